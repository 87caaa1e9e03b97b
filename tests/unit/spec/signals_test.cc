#include "spec/signals.h"

#include <csignal>
#include <string>

#include "gtest/gtest.h"

namespace faultline::spec {
namespace {

TEST(ParseSignalTest, AcceptsNamesWithAndWithoutPrefixAnyCaseAndNumbers) {
  for (const char* text : {"KILL", "SIGKILL", "kill", "sigkill", "Kill", "9", " KILL "}) {
    auto s = ParseSignal(text);
    ASSERT_TRUE(s.ok()) << text << ": " << s.status();
    EXPECT_EQ(*s, SIGKILL) << text;
  }
}

TEST(ParseSignalTest, CommonSignals) {
  struct Case {
    const char* name;
    int signo;
  };
  for (const Case& c : {Case{"TERM", SIGTERM}, Case{"INT", SIGINT}, Case{"HUP", SIGHUP},
                        Case{"QUIT", SIGQUIT}, Case{"USR1", SIGUSR1}, Case{"USR2", SIGUSR2},
                        Case{"ABRT", SIGABRT}, Case{"ALRM", SIGALRM}, Case{"STOP", SIGSTOP},
                        Case{"CONT", SIGCONT}, Case{"SEGV", SIGSEGV}, Case{"PIPE", SIGPIPE},
                        Case{"15", SIGTERM}, Case{"sigusr1", SIGUSR1}}) {
    auto s = ParseSignal(c.name);
    ASSERT_TRUE(s.ok()) << c.name;
    EXPECT_EQ(*s, c.signo) << c.name;
  }
}

TEST(ParseSignalTest, RealTimeSignals) {
  EXPECT_EQ(*ParseSignal("RTMIN"), SIGRTMIN);
  EXPECT_EQ(*ParseSignal("SIGRTMIN+2"), SIGRTMIN + 2);
  EXPECT_EQ(*ParseSignal("rtmax-1"), SIGRTMAX - 1);
  EXPECT_FALSE(ParseSignal("RTMIN-1").ok());
  EXPECT_FALSE(ParseSignal("RTMIN+999").ok());
}

TEST(ParseSignalTest, UnknownSignalsNameTheField) {
  for (const char* text : {"FOO", "", "0", "-9", "65", "999", "SIG", "KILL9", "9x"}) {
    auto s = ParseSignal(text);
    ASSERT_FALSE(s.ok()) << text;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(s.status().message(), std::string("signal: unknown signal \"") + text + "\"");
  }
}

TEST(SignalNameTest, NamesAndRoundTrips) {
  EXPECT_EQ(SignalName(SIGKILL), "SIGKILL");
  EXPECT_EQ(SignalName(SIGTERM), "SIGTERM");
  EXPECT_EQ(SignalName(SIGABRT), "SIGABRT");
  EXPECT_EQ(SignalName(SIGIO), "SIGIO");
  EXPECT_EQ(SignalName(SIGRTMIN), "SIGRTMIN");
  EXPECT_EQ(SignalName(SIGRTMIN + 3), "SIGRTMIN+3");
  EXPECT_EQ(SignalName(0), "0");
  for (int n = 1; n <= SIGRTMAX; ++n) {
    auto back = ParseSignal(SignalName(n));
    ASSERT_TRUE(back.ok()) << n << " " << SignalName(n);
    EXPECT_EQ(*back, n) << SignalName(n);
  }
}

}  // namespace
}  // namespace faultline::spec
