// Text from users, made safe to show: the one helper every error message and
// log line uses to echo a user's string (bounded and escaped), and a UTF-8
// check for values headed into proto string fields.
#ifndef FAULTLINE_COMMON_TEXT_H_
#define FAULTLINE_COMMON_TEXT_H_

#include <cstddef>
#include <string>

namespace faultline {

// How many bytes of a user's string an error message echoes by default.
inline constexpr size_t kMaxEchoBytes = 64;

// `text` for an error message or a log line: control, DEL and non-ASCII bytes
// as \xNN, and, past `max_bytes` bytes of `text`, cut with "...(N bytes)" (N =
// the whole text's size). So a 1 MiB value never makes a 1 MiB reply (gRPC
// refuses replies whose message exceeds its metadata limit), and a newline or
// a terminal escape cannot fake lines on a screen. The marker is ASCII, so
// text printed this way twice reads the same.
std::string Printable(const std::string& text, size_t max_bytes = kMaxEchoBytes);

// Whether `text` is well-formed UTF-8 (no overlong forms, surrogates or code
// points past U+10FFFF): protobuf refuses to serialize a string field that is
// not, with a message naming no field.
bool IsValidUtf8(const std::string& text);

}  // namespace faultline

#endif  // FAULTLINE_COMMON_TEXT_H_
