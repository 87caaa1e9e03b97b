#include "common/text.h"

#include <gtest/gtest.h>

#include <string>

namespace faultline {
namespace {

TEST(Printable, EscapesControlAndNonAsciiBytes) {
  EXPECT_EQ(Printable("redis-server"), "redis-server");
  EXPECT_EQ(Printable("a\nb\x1b[31m"), "a\\x0ab\\x1b[31m");
  EXPECT_EQ(Printable("\xff\x7f"), "\\xff\\x7f");
  EXPECT_EQ(Printable(std::string("a\0b", 3)), "a\\x00b");
}

TEST(Printable, CutsLongTextAndSaysHowLongItWas) {
  EXPECT_EQ(Printable(std::string(64, 'x')), std::string(64, 'x'));
  EXPECT_EQ(Printable(std::string(1 << 20, 'x')), std::string(64, 'x') + "…(1048576 bytes)");
  EXPECT_EQ(Printable("abcdef", 3), "abc…(6 bytes)");
  EXPECT_EQ(Printable(std::string(100, 'y'), std::string::npos), std::string(100, 'y'));
}

}  // namespace
}  // namespace faultline
