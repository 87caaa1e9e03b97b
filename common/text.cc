#include "common/text.h"

#include <fmt/format.h>

namespace faultline {

std::string Printable(const std::string& text, size_t max_bytes) {
  std::string out;
  const size_t shown = text.size() < max_bytes ? text.size() : max_bytes;
  for (size_t i = 0; i < shown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c >= 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  if (shown < text.size()) out += fmt::format("…({} bytes)", text.size());
  return out;
}

}  // namespace faultline
