// Renderings of a game day: the terminal timeline (`gameday status`), the
// report (`gameday report --format md|html`) and the dashboard's game-day page.
#ifndef FAULTLINE_WEB_GAMEDAY_REPORT_H_
#define FAULTLINE_WEB_GAMEDAY_REPORT_H_

#include <string>

#include "faultline/v1/controller.pb.h"

namespace faultline::web {

// The header and the steps, for a terminal.
std::string GameDayText(const v1::GameDayStatus& gd);
// One timeline line: "10:15:03 +1m02s  step 2  approved  alice: ready".
std::string GameDayEventLine(const v1::GameDayStatus& gd, const v1::GameDayEvent& ev);
// The report: header, every step with its times, the timeline, the runs.
std::string GameDayMarkdown(const v1::GameDayStatus& gd);
// The same as one self-contained HTML page (every user text escaped).
std::string GameDayHtml(const v1::GameDayStatus& gd);
// The page's body without <html>/<head> (the dashboard's live part).
std::string GameDayHtmlBody(const v1::GameDayStatus& gd);

}  // namespace faultline::web

#endif  // FAULTLINE_WEB_GAMEDAY_REPORT_H_
