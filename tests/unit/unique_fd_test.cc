#include "common/unique_fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <type_traits>
#include <utility>

#include "gtest/gtest.h"

namespace faultline {
namespace {

static_assert(!std::is_copy_constructible_v<UniqueFd>);
static_assert(!std::is_copy_assignable_v<UniqueFd>);
static_assert(std::is_nothrow_move_constructible_v<UniqueFd>);
static_assert(!std::is_convertible_v<int, UniqueFd>);

bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1 || errno != EBADF; }

int OpenDevNull() { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }

TEST(UniqueFdTest, DefaultHoldsNothing) {
  UniqueFd fd;
  EXPECT_FALSE(fd.is_valid());
  EXPECT_FALSE(fd);
  EXPECT_EQ(fd.get(), -1);
}

TEST(UniqueFdTest, NegativeMeansNothing) {
  UniqueFd fd(-5);
  EXPECT_FALSE(fd);
  EXPECT_EQ(fd.get(), -1);
}

TEST(UniqueFdTest, ClosesOnDestruction) {
  const int raw = OpenDevNull();
  ASSERT_GE(raw, 0);
  {
    UniqueFd fd(raw);
    EXPECT_TRUE(fd);
    EXPECT_EQ(fd.get(), raw);
    EXPECT_TRUE(IsOpen(raw));
  }
  EXPECT_FALSE(IsOpen(raw));
}

TEST(UniqueFdTest, ReleaseGivesUpOwnership) {
  const int raw = OpenDevNull();
  ASSERT_GE(raw, 0);
  int released;
  {
    UniqueFd fd(raw);
    released = fd.release();
    EXPECT_FALSE(fd);
  }
  EXPECT_EQ(released, raw);
  EXPECT_TRUE(IsOpen(raw));
  ::close(raw);
}

TEST(UniqueFdTest, ResetClosesTheOldFd) {
  const int a = OpenDevNull();
  const int b = OpenDevNull();
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  UniqueFd fd(a);
  fd.reset(b);
  EXPECT_FALSE(IsOpen(a));
  EXPECT_EQ(fd.get(), b);
  fd.reset(b);  // the same fd stays open
  EXPECT_TRUE(IsOpen(b));
  fd.reset();
  EXPECT_FALSE(fd);
  EXPECT_FALSE(IsOpen(b));
}

TEST(UniqueFdTest, MoveTransfersOwnership) {
  const int a = OpenDevNull();
  const int b = OpenDevNull();
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  UniqueFd first(a);
  UniqueFd second(std::move(first));
  EXPECT_FALSE(first);  // NOLINT(bugprone-use-after-move): moved-from holds none
  EXPECT_EQ(second.get(), a);
  UniqueFd third(b);
  third = std::move(second);
  EXPECT_FALSE(IsOpen(b));
  EXPECT_EQ(third.get(), a);
  EXPECT_TRUE(IsOpen(a));
}

TEST(UniqueFdTest, SwapExchangesFds) {
  const int a = OpenDevNull();
  ASSERT_GE(a, 0);
  UniqueFd x(a);
  UniqueFd y;
  x.swap(y);
  EXPECT_FALSE(x);
  EXPECT_EQ(y.get(), a);
}

}  // namespace
}  // namespace faultline
