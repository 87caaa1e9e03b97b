#include "common/text.h"

#include <fmt/format.h>

#include <cstdint>

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
  if (shown < text.size()) out += fmt::format("...({} bytes)", text.size());
  return out;
}

namespace {

// The length of the UTF-8 sequence that starts with `lead` and the smallest
// code point it may encode (to refuse overlong forms); 0 for an invalid lead.
int SequenceLength(unsigned char lead, uint32_t* min) {
  if (lead < 0x80) {
    *min = 0;
    return 1;
  }
  if (lead >= 0xc2 && lead <= 0xdf) {
    *min = 0x80;
    return 2;
  }
  if (lead >= 0xe0 && lead <= 0xef) {
    *min = 0x800;
    return 3;
  }
  if (lead >= 0xf0 && lead <= 0xf4) {
    *min = 0x10000;
    return 4;
  }
  return 0;
}

}  // namespace

bool IsValidUtf8(const std::string& text) {
  for (size_t i = 0; i < text.size();) {
    const auto lead = static_cast<unsigned char>(text[i]);
    uint32_t min = 0;
    const int n = SequenceLength(lead, &min);
    if (n == 0 || i + n > text.size()) return false;
    uint32_t cp = n == 1 ? lead : lead & (0x7f >> n);
    for (int k = 1; k < n; ++k) {
      const auto c = static_cast<unsigned char>(text[i + k]);
      if ((c & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n;
  }
  return true;
}

}  // namespace faultline
