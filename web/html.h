// Small HTML helpers shared by the dashboard's pages and the game-day report:
// escaping every user text, and the one page shell (its style sheet inline,
// nothing fetched from elsewhere).
#ifndef FAULTLINE_WEB_HTML_H_
#define FAULTLINE_WEB_HTML_H_

#include <string>

#include "common/text.h"
#include "common/units.h"

namespace faultline::web {

// `s` with & < > " ' escaped: safe in element text and quoted attributes.
std::string Html(const std::string& s);
// A whole page: <!doctype html>, <head> with `title` (escaped), the style
// sheet and `head_extra` (trusted markup), then `body` (trusted markup).
std::string Page(const std::string& title, const std::string& body,
                 const std::string& head_extra = "");

}  // namespace faultline::web

#endif  // FAULTLINE_WEB_HTML_H_
