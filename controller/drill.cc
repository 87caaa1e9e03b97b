#include "controller/drill.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/text.h"
#include "common/units.h"
#include "controller/experiment.h"
#include "probes/exec_runner.h"
#include "workload/postgres_driver.h"

namespace faultline::controller {
namespace {

using Clock = std::chrono::steady_clock;

// Beyond a step's timeout, how long the controller waits for its answer.
constexpr std::chrono::seconds kStepCallSlack{10};
// One marker statement's bound (connect, insert, select, delete).
constexpr std::chrono::seconds kMarkerStatement{5};

constexpr char kCreateMarkers[] =
    "CREATE TABLE IF NOT EXISTS faultline_markers (run text NOT NULL, seq bigint NOT NULL, "
    "stamped_unix_ns bigint NOT NULL, PRIMARY KEY (run, seq))";
constexpr char kInsertMarker[] =
    "INSERT INTO faultline_markers (run, seq, stamped_unix_ns) VALUES ($1, $2, $3)";
constexpr char kNewestMarker[] =
    "SELECT max(stamped_unix_ns) FROM faultline_markers WHERE run = $1";
constexpr char kDeleteMarkers[] = "DELETE FROM faultline_markers WHERE run = $1";

double Ms(int64_t ns) { return static_cast<double>(ns) / 1e6; }

// The last line of a step's output, for the reason.
std::string LastLine(const std::string& output) {
  std::string text = output;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  const size_t nl = text.rfind('\n');
  return Printable(nl == std::string::npos ? text : text.substr(nl + 1), 200);
}

std::string StepFailure(const v1::DrillStepResult& r) {
  std::string what = r.error();
  const std::string line = LastLine(r.output_tail());
  if (!line.empty() && r.state() == "failed") what += ": " + line;
  return fmt::format("{} {} on {}: {}", r.step(), r.state(), r.agent(), what);
}

// A step's state and figures from the agent's answer.
void FillFromAnswer(const v1::RunStepResponse& resp, std::chrono::milliseconds timeout,
                    v1::DrillStepResult* r) {
  r->set_exit_code(resp.exit_code());
  r->set_signal(resp.signal());
  r->set_duration_ms(Ms(resp.duration_ns()));
  r->set_output_tail(resp.output_tail());
  if (resp.timed_out()) {
    r->set_state("timed_out");
    r->set_error(fmt::format("timed out after {}; killed", FormatDuration(timeout)));
  } else if (resp.exit_code() != 0 || resp.signal() != 0) {
    r->set_state("failed");
    r->set_error(resp.signal() != 0 ? fmt::format("killed by signal {}", resp.signal())
                                    : fmt::format("exit status {}", resp.exit_code()));
  } else {
    r->set_state("ok");
  }
}

}  // namespace

// ---- MarkerWriter ----

struct MarkerWriter::Conn {
  std::optional<workload::PgConnection> pg;
};

namespace {

// One statement on a fresh connection to `dsn`.
absl::StatusOr<workload::PgResult> ExecOnce(const std::string& dsn, const char* sql,
                                            const std::vector<std::string>& params) {
  const auto deadline = Clock::now() + kMarkerStatement;
  auto conn = workload::PgConnection::Connect(dsn, deadline);
  if (!conn.ok()) return conn.status();
  return conn->Exec(sql, params, deadline);
}

}  // namespace

MarkerWriter::MarkerWriter(v1::DrillMarker spec, std::string run_id)
    : spec_(std::move(spec)),
      run_id_(std::move(run_id)),
      every_(MarkerEvery(spec_)),
      conn_(std::make_unique<Conn>()) {}

MarkerWriter::~MarkerWriter() { Stop(); }

absl::Status MarkerWriter::Start() {
  auto created = ExecOnce(spec_.postgres().dsn(), kCreateMarkers, {});
  if (!created.ok()) return created.status();
  if (absl::Status first = WriteOne(); !first.ok()) return first;
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void MarkerWriter::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void MarkerWriter::Loop() {
  auto next = Clock::now() + every_;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      const auto wait = std::max<Clock::duration>(next - Clock::now(), Clock::duration::zero());
      if (mu_.AwaitWithTimeout(absl::Condition(&stop_), absl::FromChrono(wait))) return;
    }
    next += every_;
    absl::Status st = WriteOne();
    if (!st.ok()) {
      absl::MutexLock lock(&mu_);
      error_ = std::string(st.message());
    }
  }
}

absl::Status MarkerWriter::WriteOne() {
  const auto deadline = Clock::now() + std::min<Clock::duration>(kMarkerStatement, every_ * 4);
  if (!conn_->pg.has_value()) {
    auto conn = workload::PgConnection::Connect(spec_.postgres().dsn(), deadline);
    if (!conn.ok()) return conn.status();
    conn_->pg.emplace(std::move(*conn));
  }
  const int64_t seq = ++seq_;
  const int64_t stamp = NowRealtimeNs();
  workload::PgConnection::Failure failure;
  auto done = conn_->pg->Exec(kInsertMarker, {run_id_, std::to_string(seq), std::to_string(stamp)},
                              deadline, &failure);
  if (!done.ok()) {
    if (failure == workload::PgConnection::Failure::kNoAnswer) conn_->pg.reset();
    return done.status();
  }
  absl::MutexLock lock(&mu_);
  ++written_;
  return absl::OkStatus();
}

absl::StatusOr<int64_t> MarkerWriter::NewestRestored() {
  auto result = ExecOnce(spec_.restored().dsn(), kNewestMarker, {run_id_});
  if (!result.ok()) return result.status();
  PGresult* r = result->get();
  if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
    return absl::NotFoundError("no marker of this run in the restored copy");
  }
  int64_t newest = 0;
  if (!absl::SimpleAtoi(PQgetvalue(r, 0, 0), &newest)) {
    return absl::DataLossError("the newest marker's stamp is not a number");
  }
  return newest;
}

absl::Status MarkerWriter::Cleanup() {
  std::vector<std::string> errors;
  for (const std::string* dsn : {&spec_.postgres().dsn(), &spec_.restored().dsn()}) {
    auto deleted = ExecOnce(*dsn, kDeleteMarkers, {run_id_});
    // A restored copy without the table (a failed restore) holds no marker.
    if (!deleted.ok() && dsn == &spec_.postgres().dsn()) {
      errors.push_back(std::string(deleted.status().message()));
    }
  }
  if (errors.empty()) return absl::OkStatus();
  return absl::UnavailableError(fmt::format("cleanup: {}", absl::StrJoin(errors, "; ")));
}

int64_t MarkerWriter::written() const {
  absl::MutexLock lock(&mu_);
  return written_;
}

std::string MarkerWriter::error() const {
  absl::MutexLock lock(&mu_);
  return error_;
}

// ---- DrillRun ----

DrillRun::DrillRun(const v1::Experiment& exp, DrillContext context)
    : exp_(exp), ctx_(std::move(context)) {}

DrillOutcome DrillRun::Run() {
  DrillOutcome out;
  if (exp_.drill().has_marker()) {
    marker_ = std::make_unique<MarkerWriter>(exp_.drill().marker(), ctx_.run_id);
    ctx_.progress("marker: first row");
    if (absl::Status st = marker_->Start(); !st.ok()) {
      out.verdict = "error";
      out.reason = fmt::format("drill.marker: the first marker could not be written: {}",
                               std::string(st.message()));
      return out;
    }
  }
  RunSteps();
  FinishMarker();
  out.result = result_;
  SetRto(&out.result);
  Score(&out);
  return out;
}

void DrillRun::RunSteps() {
  const v1::Drill& drill = exp_.drill();
  const std::pair<std::string, const v1::DrillStep*> steps[] = {
      {"backup", drill.has_backup() ? &drill.backup() : nullptr},
      {"restore", &drill.restore()},
      {"verify", &drill.verify()}};
  bool failed = false;
  for (const auto& [name, step] : steps) {
    if (step == nullptr) continue;
    v1::DrillStepResult* r = result_.add_steps();
    if (failed) {
      r->set_step(name);
      r->set_state("skipped");
      r->set_error("an earlier step failed");
      continue;
    }
    *r = RunOne(name, *step);
    failed = r->state() != "ok";
    if (name == "backup" && marker_) marker_->Stop();
    if (name == "restore" && !failed) MeasureRpo(*r);
  }
}

void DrillRun::FinishMarker() {
  if (!marker_) return;
  marker_->Stop();
  result_.set_markers_written(marker_->written());
  auto note = [this](const std::string& what) {
    result_.set_marker_error(result_.marker_error().empty() ? what
                                                            : result_.marker_error() + "; " + what);
  };
  if (!marker_->error().empty()) note("a marker write failed: " + marker_->error());
  if (exp_.drill().marker().keep()) return;
  if (absl::Status st = marker_->Cleanup(); !st.ok()) note(std::string(st.message()));
}

v1::DrillStepResult DrillRun::RunOne(const std::string& name, const v1::DrillStep& step) {
  v1::DrillStepResult r;
  r.set_step(name);
  r.mutable_argv()->CopyFrom(step.exec().argv());
  auto it = ctx_.targets->find(step.on());
  if (it == ctx_.targets->end() || it->second.empty()) {
    r.set_state("error");
    r.set_error(fmt::format("drill.{}.on: target {} matched no agent", name, step.on()));
    return r;
  }
  r.set_agent(it->second.front().name);
  ctx_.progress(fmt::format("{} on {}", name, r.agent()));
  r.set_started_unix_ns(NowRealtimeNs());
  ctx_.event(name + "_started", r.started_unix_ns(), r.agent(), step.exec().argv(0));
  Call(name, step, &r);
  r.set_ended_unix_ns(NowRealtimeNs());
  ctx_.event(name + "_ended", r.ended_unix_ns(), r.agent(),
             r.state() == "ok" ? "ok" : fmt::format("{}: {}", r.state(), r.error()));
  return r;
}

void DrillRun::Call(const std::string& name, const v1::DrillStep& step, v1::DrillStepResult* r) {
  const AgentRef& agent = ctx_.targets->at(step.on()).front();
  auto client = ctx_.clients->Get(agent.name, agent.address);
  if (!client.ok()) {
    r->set_state("error");
    r->set_error(std::string(client.status().message()));
    return;
  }
  v1::RunStepRequest req;
  req.mutable_argv()->CopyFrom(step.exec().argv());
  req.set_timeout_ms(StepTimeout(step).count());
  req.set_step(name);
  auto resp = (*client)->RunStep(req, kStepCallSlack, ctx_.cancel);
  if (!resp.ok()) {
    const auto code = resp.status().code();
    const bool refused = code == absl::StatusCode::kPermissionDenied ||
                         code == absl::StatusCode::kInvalidArgument ||
                         code == absl::StatusCode::kFailedPrecondition ||
                         code == absl::StatusCode::kResourceExhausted;
    r->set_state(refused ? "refused" : "error");
    r->set_error(AgentMessage(resp.status()));
    return;
  }
  FillFromAnswer(*resp, StepTimeout(step), r);
}

void DrillRun::MeasureRpo(const v1::DrillStepResult& restore) {
  if (!marker_) return;
  auto newest = marker_->NewestRestored();
  if (!newest.ok()) {
    result_.set_marker_error(std::string(newest.status().message()));
    return;
  }
  // The answer arrived after the restore ended by at most the call's overhead.
  const double overhead_ms =
      std::max(0.0, Ms(restore.ended_unix_ns() - restore.started_unix_ns()) - restore.duration_ms());
  result_.set_rpo_measured(true);
  result_.set_newest_marker_unix_ns(*newest);
  result_.set_restore_rpo_ms(Ms(restore.ended_unix_ns() - *newest));
  result_.set_restore_rpo_error_ms(Ms(MarkerEvery(exp_.drill().marker()).count()) + overhead_ms);
  ctx_.event("marker_recovered", *newest, "", "the newest marker in the restored copy");
}

void DrillRun::SetRto(v1::DrillResult* result) const {
  double rto = 0;
  double overhead = 0;
  int timed = 0;
  for (const v1::DrillStepResult& r : result->steps()) {
    if ((r.step() == "restore" || r.step() == "verify") && r.duration_ms() > 0) {
      rto += r.duration_ms();
      overhead += std::max(0.0, Ms(r.ended_unix_ns() - r.started_unix_ns()) - r.duration_ms());
      ++timed;
    }
  }
  // Both steps ran: otherwise there is no restore time to speak of.
  result->set_restore_rto_ms(timed == 2 ? rto : 0);
  result->set_restore_rto_error_ms(timed == 2 ? overhead : 0);
}

void DrillRun::Score(DrillOutcome* out) const {
  const v1::DrillResult& d = out->result;
  auto fail = [out](std::string reason) {
    out->verdict = "fail";
    out->reason = std::move(reason);
  };
  if (ctx_.cancel != nullptr && ctx_.cancel->cancelled()) {
    out->verdict = "aborted";
    out->reason = "aborted during the drill";
    return;
  }
  for (const v1::DrillStepResult& r : d.steps()) {
    if (r.state() != "ok" && r.state() != "skipped") return fail(StepFailure(r));
  }
  const double rto_ms = Ms(DurationOr(exp_.objectives().rto(), {}).count());
  if (d.restore_rto_ms() > rto_ms) {
    return fail(fmt::format("restore_rto_ms {:.0f} (± {:.0f}) is over objectives.rto {:.0f} ms",
                            d.restore_rto_ms(), d.restore_rto_error_ms(), rto_ms));
  }
  const double rpo_ms = Ms(DurationOr(exp_.objectives().rpo(), {}).count());
  if (rpo_ms > 0 && !d.rpo_measured()) {
    return fail(fmt::format("restore_rpo_ms could not be measured: {}", d.marker_error()));
  }
  if (rpo_ms > 0 && d.restore_rpo_ms() > rpo_ms) {
    return fail(fmt::format("restore_rpo_ms {:.0f} (± {:.0f}) is over objectives.rpo {:.0f} ms",
                            d.restore_rpo_ms(), d.restore_rpo_error_ms(), rpo_ms));
  }
  out->verdict = "pass";
  out->reason = fmt::format("restore_rto_ms {:.0f} within objectives.rto {:.0f} ms",
                            d.restore_rto_ms(), rto_ms);
  if (d.rpo_measured()) {
    out->reason += fmt::format("; restore_rpo_ms {:.0f} (± {:.0f})", d.restore_rpo_ms(),
                               d.restore_rpo_error_ms());
  }
}

}  // namespace faultline::controller
