#include "web/dashboard.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "absl/time/clock.h"

#include "web/gameday_report.h"
#include "web/html.h"

namespace faultline::web {
namespace {

constexpr char kNav[] = "<nav><a href=\"/\"><b>Faultline</b></a><a href=\"/\">overview</a>"
                        "<a href=\"/metrics\">metrics</a></nav>\n";

std::string RunLink(const std::string& id) {
  return fmt::format("<a href=\"/runs/{}\">{}</a>", Html(id), Html(id));
}

std::string Figure(bool has, double ms, double err) {
  return has ? fmt::format("{:.1f} ± {:.1f}", ms, err) : "-";
}

std::string Rpo(const v1::RunReport& r) {
  if (!r.data().empty()) {
    double rpo = 0;
    for (const auto& d : r.data()) rpo = std::max(rpo, d.rpo_ms());
    return fmt::format("{:.0f}", rpo);
  }
  if (r.has_drill() && r.drill().rpo_measured()) {
    return fmt::format("{:.0f}", r.drill().restore_rpo_ms());
  }
  return "-";
}

// A tiny line of the last ticks' recovery times, oldest on the left.
std::string Sparkline(const v1::ScheduleStatus& s) {
  std::vector<double> values;
  for (auto it = s.ticks().rbegin(); it != s.ticks().rend(); ++it) {
    if (it->outcome() == "started" && it->outage_observed()) {
      values.push_back(it->time_to_recover_ms());
    }
  }
  if (values.empty()) return "<span class=\"muted\">-</span>";
  const double hi = *std::max_element(values.begin(), values.end());
  const double lo = *std::min_element(values.begin(), values.end());
  const double w = 120, h = 24;
  std::string points, title;
  for (size_t i = 0; i < values.size(); ++i) {
    const double x = values.size() == 1 ? w / 2 : w * i / (values.size() - 1);
    const double y = hi == lo ? h / 2 : h - 2 - (h - 4) * (values[i] - lo) / (hi - lo);
    points += fmt::format("{:.1f},{:.1f} ", x, y);
    title += fmt::format("{}{:.0f}", i == 0 ? "" : ", ", values[i]);
  }
  return fmt::format(
      "<svg class=\"trend\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\"><title>time to "
      "recover (ms), oldest first: {}</title><polyline fill=\"none\" stroke=\"#0b57d0\" "
      "stroke-width=\"1.5\" points=\"{}\"/></svg>",
      w, h, w, h, title, points);
}

std::string LastVerdicts(const v1::ScheduleStatus& s) {
  std::string out;
  int n = 0;
  for (const auto& t : s.ticks()) {
    if (++n > 5) break;
    const std::string v = t.outcome() == "skipped" ? "skipped:" + t.reason()
                          : t.verdict().empty()    ? "running"
                                                   : t.verdict();
    out += fmt::format("<span class=\"{}\">{}</span> ", Html(t.verdict()), Html(v));
  }
  return out.empty() ? "-" : out;
}

// A tick step (1, 2 or 5 times a power of ten) giving about 8 ticks over `span`.
double TickStep(double span) {
  if (span <= 0) return 1;
  const double raw = span / 8;
  const double p = std::pow(10, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (raw <= m * p) return m * p;
  }
  return 10 * p;
}

std::string AxisLabel(double ms, double step) {
  if (step >= 1000) return fmt::format("{:g} s", ms / 1000);
  return fmt::format("{:g} ms", ms);
}

}  // namespace

std::string OverviewPage(const v1::ListAgentsResponse& agents,
                         const std::vector<v1::RunReport>& runs,
                         const std::vector<v1::ScheduleStatus>& schedules,
                         const std::vector<v1::GameDayStatus>& gamedays, int64_t now_unix_ns) {
  std::string b = kNav;
  b += fmt::format("<h1>Overview</h1><p class=\"muted\">as of {} UTC</p>\n",
                   FormatUtc(now_unix_ns));
  // Agents by zone.
  std::map<std::string, std::vector<const v1::AgentStatus*>> zones;
  for (const auto& a : agents.agents()) {
    auto z = a.labels().find("zone");
    zones[z == a.labels().end() ? "(no zone)" : z->second].push_back(&a);
  }
  b += fmt::format("<h2>Agents</h2><div id=\"agents\">\n");
  if (zones.empty()) b += "<p class=\"muted\">no agents registered</p>\n";
  for (const auto& [zone, list] : zones) {
    int healthy = 0;
    for (const auto* a : list) healthy += a->health() == "healthy";
    b += fmt::format("<div class=\"zone\" data-zone=\"{}\"><h3>zone {} <span class=\"muted\">"
                     "({} of {} healthy)</span></h3><table><tr><th>agent</th><th>health</th>"
                     "<th>active faults</th></tr>\n",
                     Html(zone), Html(zone), healthy, list.size());
    for (const auto* a : list) {
      b += fmt::format("<tr data-agent=\"{}\"><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>\n",
                       Html(a->name()), Html(a->name()), Html(a->health()), Html(a->health()),
                       a->active_faults() < 0 ? "?" : std::to_string(a->active_faults()));
    }
    b += "</table></div>\n";
  }
  b += "</div>\n";
  // Runs.
  std::vector<const v1::RunReport*> running, recent;
  for (const auto& r : runs) (r.state() == "running" ? running : recent).push_back(&r);
  auto run_table = [&](const char* id, const std::vector<const v1::RunReport*>& list) {
    std::string t = fmt::format(
        "<table id=\"{}\"><tr><th>run</th><th>experiment</th><th>verdict</th><th>time to recover "
        "(ms)</th><th>RPO (ms)</th><th>started (UTC)</th><th>from</th></tr>\n",
        id);
    for (const auto* r : list) {
      const std::string from = !r->schedule().empty() ? "schedule " + r->schedule()
                               : !r->gameday().empty() ? "game day " + r->gameday()
                                                        : "";
      t += fmt::format(
          "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td>"
          "<td>{}</td></tr>\n",
          RunLink(r->run_id()), Html(r->experiment()), Html(r->verdict()), Html(r->verdict()),
          Figure(r->outage_observed(), r->time_to_recover_ms(), r->error_ms()), Rpo(*r),
          FormatUtc(r->started_unix_ns()), Html(from));
    }
    return t + "</table>\n";
  };
  b += "<h2>Running</h2>\n";
  b += running.empty() ? "<p class=\"muted\" id=\"running\">no run in flight</p>\n"
                       : run_table("running", running);
  b += "<h2>Recent runs</h2>\n";
  b += recent.empty() ? "<p class=\"muted\" id=\"runs\">no runs yet</p>\n" : run_table("runs", recent);
  // Schedules.
  b += "<h2>Schedules</h2>\n";
  if (schedules.empty()) {
    b += "<p class=\"muted\" id=\"schedules\">no schedules</p>\n";
  } else {
    b += "<table id=\"schedules\"><tr><th>schedule</th><th>experiment</th><th>state</th>"
         "<th>next run (UTC)</th><th>recovery trend</th><th>last verdicts (newest first)</th></tr>\n";
    for (const auto& s : schedules) {
      b += fmt::format(
          "<tr data-schedule=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
          "<td>{}</td></tr>\n",
          Html(s.spec().name()), Html(s.spec().name()), Html(s.experiment()), Html(s.state()),
          s.next_start_unix_ns() == 0 ? "-" : FormatUtc(s.next_start_unix_ns()), Sparkline(s),
          LastVerdicts(s));
    }
    b += "</table>\n";
  }
  // Game days.
  b += "<h2>Game days</h2>\n";
  if (gamedays.empty()) {
    b += "<p class=\"muted\" id=\"gamedays\">no game days</p>\n";
  } else {
    b += "<table id=\"gamedays\"><tr><th>game day</th><th>state</th><th>result</th><th>step</th>"
         "<th>started (UTC)</th><th>by</th></tr>\n";
    for (const auto& g : gamedays) {
      b += fmt::format(
          "<tr><td><a href=\"/gamedays/{}\">{}</a></td><td class=\"{}\">{}</td><td class=\"{}\">{}"
          "</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
          Html(g.id()), Html(g.id()), Html(g.state()), Html(g.state()), Html(g.result()),
          Html(g.result().empty() ? "-" : g.result()),
          Html(g.current_step().empty() ? "-" : g.current_step()), FormatUtc(g.started_unix_ns()),
          Html(g.started_by()));
    }
    b += "</table>\n";
  }
  return Page("Faultline", b, "<meta http-equiv=\"refresh\" content=\"5\">");
}

std::string RunTimelineSvg(const v1::RunReport& run) {
  // Rows: one per probe strip, one per agent with faults.
  struct Bar {
    double from = -1, to = -1;
    std::set<std::string> kinds;
  };
  std::map<std::string, Bar> bars;  // by agent
  const double end_ms =
      run.ended_unix_ns() > run.started_unix_ns()
          ? static_cast<double>(run.ended_unix_ns() - run.started_unix_ns()) / 1e6
          : 0;
  double span = end_ms;
  for (const auto& e : run.timeline()) span = std::max(span, e.at_ms());
  for (const auto& s : run.probe_strips()) {
    for (const auto& seg : s.segments()) span = std::max(span, seg.to_ms());
  }
  if (span <= 0) span = 1;
  for (const auto& f : run.faults()) bars[f.agent()].kinds.insert(f.kind());
  for (const auto& e : run.timeline()) {
    if (e.agent().empty()) continue;
    if (e.kind() == "injected") {
      Bar& b = bars[e.agent()];
      if (b.from < 0 || e.at_ms() < b.from) b.from = e.at_ms();
    } else if (e.kind() == "reverted") {
      Bar& b = bars[e.agent()];
      b.to = std::max(b.to, e.at_ms());
    }
  }
  for (auto it = bars.begin(); it != bars.end();) {
    it = it->second.from < 0 ? bars.erase(it) : std::next(it);
  }
  const double left = 170, plot = 800, row = 22, top = 24;
  const int rows = run.probe_strips_size() + static_cast<int>(bars.size());
  const double height = top + row * std::max(rows, 1) + 34;
  auto x = [&](double ms) { return left + plot * std::clamp(ms / span, 0.0, 1.0); };
  std::string s = fmt::format(
      "<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" "
      "height=\"{:.0f}\" viewBox=\"0 0 {:.0f} {:.0f}\" role=\"img\" aria-label=\"run timeline\">\n"
      "<rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n",
      left + plot + 20, height, left + plot + 20, height);
  // Axis.
  const double step = TickStep(span);
  const double axis_y = top + row * std::max(rows, 1) + 6;
  s += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#999\"/>\n",
                   left, axis_y, left + plot, axis_y);
  for (double t = 0; t <= span + 1e-9 && t / step < 50; t += step) {
    s += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#eee\"/>"
        "<text x=\"{0:.1f}\" y=\"{3:.1f}\" text-anchor=\"middle\" fill=\"#555\">{4}</text>\n",
        x(t), top - 4, axis_y, axis_y + 16, AxisLabel(t, step));
  }
  int r = 0;
  for (const auto& strip : run.probe_strips()) {
    const double y = top + row * r++;
    s += fmt::format("<g class=\"probe\" data-probe=\"{}\"><text x=\"4\" y=\"{:.1f}\">probe {}</text>\n",
                     Html(strip.probe()), y + 15, Html(strip.probe()));
    for (const auto& seg : strip.segments()) {
      const double w = std::max(1.0, x(seg.to_ms()) - x(seg.from_ms()));
      s += fmt::format(
          "<rect class=\"{}\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" "
          "fill=\"{}\"><title>{} {} sample(s), {:.0f}-{:.0f} ms</title></rect>\n",
          seg.ok() ? "ok" : "failed", x(seg.from_ms()), y + 3, w, row - 6,
          seg.ok() ? "#34a853" : "#d93025", seg.ok() ? "ok" : "failed", seg.samples(),
          seg.from_ms(), seg.to_ms());
    }
    s += "</g>\n";
  }
  for (const auto& [agent, bar] : bars) {
    const double y = top + row * r++;
    std::string kinds;
    for (const auto& k : bar.kinds) kinds += (kinds.empty() ? "" : ",") + k;
    const double to = bar.to < 0 ? span : bar.to;
    s += fmt::format(
        "<g class=\"fault\" data-agent=\"{}\"><text x=\"4\" y=\"{:.1f}\">{} {}</text>"
        "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"#f29900\">"
        "<title>{} on {}: {:.0f}-{:.0f} ms</title></rect></g>\n",
        Html(agent), y + 15, Html(agent), Html(kinds), x(bar.from), y + 4,
        std::max(1.0, x(to) - x(bar.from)), row - 8, Html(kinds), Html(agent), bar.from, to);
  }
  // Detect and recover marks, each with its error band.
  for (const auto& e : run.timeline()) {
    const bool detect = e.kind() == "outage_start";
    if (!detect && e.kind() != "recovered") continue;
    const char* color = detect ? "#b00020" : "#176b21";
    const double err = e.error_ms();
    s += fmt::format(
        "<g id=\"{}\" data-at-ms=\"{:.1f}\" data-error-ms=\"{:.1f}\"><rect x=\"{:.1f}\" "
        "y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\" fill-opacity=\"0.15\"/>"
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" "
        "stroke-width=\"1.5\" stroke-dasharray=\"4 2\"/><text x=\"{:.1f}\" y=\"{:.1f}\" "
        "text-anchor=\"middle\" fill=\"{}\">{} {:.1f} ms ± {:.1f}</text></g>\n",
        detect ? "detect" : "recover", e.at_ms(), err, x(e.at_ms() - err), top - 2,
        std::max(1.0, x(e.at_ms() + err) - x(e.at_ms() - err)), axis_y - top + 2, color,
        x(e.at_ms()), top - 2, x(e.at_ms()), axis_y, color, x(e.at_ms()), detect ? 11.0 : 22.0,
        color, detect ? "detect" : "recover", e.at_ms(), err);
  }
  return s + "</svg>\n";
}

std::string RunPage(const v1::RunReport& run) {
  std::string b = kNav;
  b += fmt::format("<h1>Run {}</h1>\n<p>experiment <b>{}</b>{} &middot; verdict "
                   "<b id=\"verdict\" class=\"{}\">{}</b></p>\n<p id=\"reason\">{}</p>\n",
                   Html(run.run_id()), Html(run.experiment()),
                   run.description().empty() ? "" : " &middot; " + Html(run.description()),
                   Html(run.verdict()), Html(run.verdict()), Html(run.reason()));
  b += "<table id=\"figures\">";
  auto row = [&](const std::string& k, const std::string& v) {
    b += fmt::format("<tr><th>{}</th><td>{}</td></tr>", k, v);
  };
  row("started", FormatUtc(run.started_unix_ns()) + " UTC");
  row("ended", FormatUtc(run.ended_unix_ns()) + " UTC");
  row("RTO target", fmt::format("{:.0f} ms", run.rto_target_ms()));
  row("time to detect", Figure(run.outage_observed(), run.time_to_detect_ms(), run.error_ms()) + " ms");
  row("time to recover",
      Figure(run.outage_observed(), run.time_to_recover_ms(), run.error_ms()) + " ms");
  row("RPO", Rpo(run) == "-" ? "-" : Rpo(run) + " ms");
  row("start skew", fmt::format("{:.1f} ms", run.start_skew_ms()));
  row("clock error", fmt::format("± {:.1f} ms", run.clock_error_ms()));
  if (!run.schedule().empty()) row("schedule", Html(run.schedule()));
  if (!run.gameday().empty()) {
    row("game day", fmt::format("<a href=\"/gamedays/{}\">{}</a>", Html(run.gameday()),
                                Html(run.gameday())));
  }
  b += "</table>\n<h2>Timeline</h2>\n" + RunTimelineSvg(run);
  b += "<h2>Events</h2>\n<table id=\"events\"><tr><th>ms</th><th>event</th><th>agent</th>"
       "<th>detail</th><th>± ms</th></tr>\n";
  for (const auto& e : run.timeline()) {
    b += fmt::format("<tr><td>{:.1f}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1f}</td></tr>\n",
                     e.at_ms(), Html(e.kind()), Html(e.agent()), Html(e.detail()), e.error_ms());
  }
  b += "</table>\n";
  if (!run.faults().empty()) {
    b += "<h2>Faults</h2>\n<table id=\"faults\"><tr><th>agent</th><th>target</th><th>kind</th>"
         "<th>changes</th></tr>\n";
    for (const auto& f : run.faults()) {
      std::string changes;
      for (const auto& c : f.changes()) changes += Html(c) + "<br>";
      b += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n", Html(f.agent()),
                       Html(f.target()), Html(f.kind()), changes);
    }
    b += "</table>\n";
  }
  return Page("Run " + run.run_id(), b,
              run.state() == "running" ? "<meta http-equiv=\"refresh\" content=\"2\">" : "");
}

std::string GameDayPage(const v1::GameDayStatus& gd) {
  // The live part is fetched again every second until the game day ends;
  // the script only replaces that part's markup with the server's.
  const bool live = gd.state() != "completed" && gd.state() != "aborted";
  std::string b = kNav;
  b += fmt::format("<div id=\"live\" data-live=\"{}\">\n{}</div>\n", live ? "yes" : "no",
                   GameDayHtmlBody(gd));
  if (live) {
    b += fmt::format(
        "<script>\n(function() {{\n  const live = document.getElementById('live');\n"
        "  const tick = async () => {{\n    try {{\n"
        "      const r = await fetch(location.pathname + '/live', {{cache: 'no-store'}});\n"
        "      if (r.ok) {{\n        live.innerHTML = await r.text();\n"
        "        const s = live.querySelector('#state');\n"
        "        if (s && (s.classList.contains('completed') || s.classList.contains('aborted'))) "
        "{{\n          live.dataset.live = 'no';\n          return;\n        }}\n      }}\n"
        "    }} catch (e) {{}}\n    setTimeout(tick, {});\n  }};\n  setTimeout(tick, {});\n"
        "}})();\n</script>\n",
        kLiveRefreshMs, kLiveRefreshMs);
  }
  return Page("Game day " + gd.name(), b);
}

std::vector<metrics::HttpRoute> DashboardRoutes(DashboardData* data) {
  auto html = [](std::string body) {
    metrics::HttpResponse r;
    r.content_type = "text/html; charset=utf-8";
    r.body = std::move(body);
    return r;
  };
  auto error = [](const absl::Status& st) {
    metrics::HttpResponse r;
    r.status = absl::IsNotFound(st) ? 404 : 500;
    r.body = std::string(st.message()) + "\n";
    return r;
  };
  std::vector<metrics::HttpRoute> routes;
  routes.push_back({"/", [=](const metrics::HttpRequest&) {
                      auto agents = data->DashboardAgents();
                      if (!agents.ok()) return error(agents.status());
                      auto runs = data->DashboardRuns(kOverviewRuns);
                      if (!runs.ok()) return error(runs.status());
                      auto schedules = data->DashboardSchedules();
                      if (!schedules.ok()) return error(schedules.status());
                      auto gamedays = data->DashboardGameDays(kOverviewGameDays);
                      if (!gamedays.ok()) return error(gamedays.status());
                      return html(OverviewPage(*agents, *runs, *schedules, *gamedays,
                                               absl::ToUnixNanos(absl::Now())));
                    }});
  routes.push_back({"/runs/([A-Za-z0-9._-]{1,160})", [=](const metrics::HttpRequest& req) {
                      auto run = data->DashboardRun(req.matches[1]);
                      return run.ok() ? html(RunPage(*run)) : error(run.status());
                    }});
  routes.push_back({"/gamedays/([a-z0-9-]{1,100})", [=](const metrics::HttpRequest& req) {
                      auto gd = data->DashboardGameDay(req.matches[1]);
                      return gd.ok() ? html(GameDayPage(*gd)) : error(gd.status());
                    }});
  routes.push_back({"/gamedays/([a-z0-9-]{1,100})/live", [=](const metrics::HttpRequest& req) {
                      auto gd = data->DashboardGameDay(req.matches[1]);
                      return gd.ok() ? html(GameDayHtmlBody(*gd)) : error(gd.status());
                    }});
  return routes;
}

}  // namespace faultline::web
