// Tests of the integration-test harness itself (no agent needed): subprocesses,
// simulated hosts, tmpfs inside a host, namespaces with a veth pair, certificates.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "common/endpoint.h"
#include "harness/agent_process.h"
#include "harness/netns.h"
#include "harness/sim_host.h"
#include "harness/status_matchers.h"
#include "harness/subprocess.h"
#include "harness/test_dir.h"

namespace faultline::itest {
namespace {

using namespace std::chrono_literals;

TEST(Subprocess, CapturesOutputAndExitCode) {
  CommandResult r = RunCommand({"sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(r.exit_code, 3) << r.Describe();
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_FALSE(r.ok());
}

TEST(Subprocess, MissingBinaryIsAnError) {
  auto sp = Subprocess::Start({"/nonexistent/fltest-binary"});
  EXPECT_FALSE(sp.ok());
  CommandResult r = RunCommand({"/nonexistent/fltest-binary"});
  EXPECT_FALSE(r.start_error.empty());
}

TEST(Subprocess, TimeoutKills) {
  auto start = std::chrono::steady_clock::now();
  CommandResult r = RunCommand({"sleep", "30"}, 300ms);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + SIGKILL);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(Subprocess, KillAndDestructorReap) {
  ASSERT_OK_AND_ASSIGN(auto sp, Subprocess::Start({"sleep", "30"}));
  pid_t pid = sp->pid();
  EXPECT_TRUE(sp->Running());
  EXPECT_FALSE(sp->Wait(50ms));
  sp->Kill(SIGTERM);
  ASSERT_TRUE(sp->Wait(5s));
  EXPECT_TRUE(sp->signaled());
  EXPECT_EQ(sp->term_signal(), SIGTERM);

  ASSERT_OK_AND_ASSIGN(auto sp2, Subprocess::Start({"sleep", "30"}));
  pid = sp2->pid();
  sp2.reset();
  EXPECT_FALSE(ProcessAlive(pid));
}

TEST(Subprocess, OutputToFiles) {
  ASSERT_OK_AND_ASSIGN(auto dir, TestDir::Create("harness"));
  SubprocessOptions o;
  o.stdout_file = dir->Path("out");
  o.stderr_file = dir->Path("err");
  ASSERT_OK_AND_ASSIGN(auto sp, Subprocess::Start({"sh", "-c", "echo a; echo b >&2"}, o));
  ASSERT_TRUE(sp->Wait(5s));
  EXPECT_EQ(sp->exit_code(), 0);
  EXPECT_EQ(sp->Stdout(), "a\n");
  EXPECT_EQ(sp->Stderr(), "b\n");
}

TEST(SimHost, ProcessesLiveInTheirOwnPidNamespace) {
  ASSERT_OK_AND_ASSIGN(auto dir, TestDir::Create("harness"));
  ASSERT_OK_AND_ASSIGN(std::string victim, MakeVictimBinary(*dir, "flvictim"));
  pid_t outer = 0;
  pid_t init = 0;
  {
    ASSERT_OK_AND_ASSIGN(auto host, SimHost::Create("h1"));
    init = host->init_pid();
    EXPECT_EQ(InnermostPid(init), 1);
    ASSERT_OK_AND_ASSIGN(auto exec, host->Exec({victim, "600"}));
    ASSERT_OK_AND_ASSIGN(HostProcess p, host->Find(*exec));
    outer = p.outer_pid;
    EXPECT_EQ(ProcessComm(outer), "flvictim");
    EXPECT_NE(p.inner_pid, p.outer_pid);
    EXPECT_LT(p.inner_pid, 20);
    // Inside, only the host's processes are visible.
    CommandResult ps = host->Run({"ls", "/proc"});
    ASSERT_TRUE(ps.ok()) << ps.Describe();
    EXPECT_NE(ps.out.find(std::to_string(p.inner_pid) + "\n"), std::string::npos) << ps.out;
    EXPECT_EQ(ps.out.find("\n" + std::to_string(getpid()) + "\n"), std::string::npos) << ps.out;
    // Kill by outer pid is seen by nsenter's wait.
    CommandResult pgrep = host->Run({"pgrep", "-x", "flvictim"});
    EXPECT_EQ(pgrep.out, std::to_string(p.inner_pid) + "\n") << pgrep.Describe();
  }
  // The host's destruction took everything inside with it.
  EXPECT_TRUE(WaitFor([&] { return !ProcessAlive(outer); }, 5s));
  EXPECT_FALSE(ProcessAlive(init));
}

TEST(SimHost, StopAndContinueAreVisibleFromOutside) {
  ASSERT_OK_AND_ASSIGN(auto host, SimHost::Create("h2"));
  ASSERT_OK_AND_ASSIGN(auto exec, host->Exec({"sleep", "600"}));
  ASSERT_OK_AND_ASSIGN(HostProcess p, host->Find(*exec));
  ASSERT_TRUE(host->Run({"kill", "-STOP", std::to_string(p.inner_pid)}).ok());
  EXPECT_TRUE(WaitFor([&] { return ProcessState(p.outer_pid) == 'T'; }, 2s));
  kill(p.outer_pid, SIGCONT);
  EXPECT_TRUE(WaitFor([&] { return ProcessState(p.outer_pid) == 'S'; }, 2s));
  kill(p.outer_pid, SIGKILL);
  // nsenter stopped itself when its child stopped (util-linux behaviour).
  exec->KillGroup(SIGCONT);
  EXPECT_TRUE(exec->Wait(5s));
  EXPECT_EQ(exec->exit_code(), 128 + SIGKILL);
}

TEST(SimHost, TmpfsIsPrivateToTheHost) {
  ASSERT_OK_AND_ASSIGN(auto dir, TestDir::Create("harness"));
  std::string mnt = dir->Path("mnt");
  ASSERT_OK_AND_ASSIGN(auto host, SimHost::Create("h3"));
  ASSERT_OK(host->MountTmpfs(mnt, "8M"));
  struct statvfs inside {};
  ASSERT_EQ(statvfs(host->OutsidePath(mnt).c_str(), &inside), 0);
  EXPECT_EQ(static_cast<uint64_t>(inside.f_blocks) * inside.f_frsize, 8ull << 20);
  struct statvfs outside {};
  ASSERT_EQ(statvfs(mnt.c_str(), &outside), 0);
  EXPECT_NE(outside.f_fsid, inside.f_fsid);
  CommandResult df = host->Run({"findmnt", "-n", "-o", "FSTYPE", mnt});
  EXPECT_EQ(df.out, "tmpfs\n") << df.Describe();
}

TEST(SimHost, NamedNetnsHostsTalkOverVeth) {
  ASSERT_OK_AND_ASSIGN(NetLink2 net, MakeLinkedPair("na", "10.231.0.1/24", "nb", "10.231.0.2/24"));
  ASSERT_OK_AND_ASSIGN(auto host, SimHost::CreateInNetns("ha", *net.a));
  CommandResult ping = host->Run({"busybox", "ping", "-c", "1", "-W", "2", "10.231.0.2"}, 10s);
  EXPECT_TRUE(ping.ok()) << ping.Describe();
  CommandResult links = host->Run({"ip", "-o", "link", "show", "veth-a"});
  EXPECT_TRUE(links.ok()) << links.Describe();
  // Nothing of ours is in the machine's own namespace.
  CommandResult root = RunCommand({"ip", "-o", "link", "show", "veth-a"});
  EXPECT_NE(root.exit_code, 0);
}

TEST(SimHost, OwnedNamedNetnsIsDeleted) {
  std::string name;
  {
    ASSERT_OK_AND_ASSIGN(auto host, SimHost::Create("hn", HostNet::kNamed));
    ASSERT_NE(host->netns(), nullptr);
    name = host->netns()->name();
    EXPECT_TRUE(std::filesystem::exists("/run/netns/" + name));
    CommandResult lo = host->Run({"ip", "-o", "link", "show", "lo"});
    EXPECT_NE(lo.out.find("UP"), std::string::npos) << lo.Describe();
  }
  EXPECT_FALSE(std::filesystem::exists("/run/netns/" + name));
}

TEST(Certs, ChainsVerifyOnlyAgainstTheirCa) {
  ASSERT_OK_AND_ASSIGN(auto dir, TestDir::Create("harness"));
  ASSERT_OK_AND_ASSIGN(TestCerts c, MakeTestCerts(*dir));
  EXPECT_TRUE(RunCommand({"openssl", "verify", "-CAfile", c.ca, c.server_cert}).ok());
  EXPECT_TRUE(RunCommand({"openssl", "verify", "-CAfile", c.ca, c.client_cert}).ok());
  EXPECT_FALSE(RunCommand({"openssl", "verify", "-CAfile", c.ca, c.other_client_cert}).ok());
  EXPECT_TRUE(
      RunCommand({"openssl", "verify", "-CAfile", c.other_ca, c.other_client_cert}).ok());
  CommandResult text = RunCommand({"openssl", "x509", "-in", c.server_cert, "-noout", "-text"});
  EXPECT_NE(text.out.find("IP Address:127.0.0.1"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("DNS:localhost"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("URI:spiffe://faultline/agent/fltest-agent"), std::string::npos)
      << text.out;
  ASSERT_OK_AND_ASSIGN(TlsFiles extra, IssueTestCert(c, "viewer", "v2"));
  EXPECT_TRUE(RunCommand({"openssl", "verify", "-CAfile", c.ca, extra.cert}).ok());
}

TEST(TestDir, RemovedByDestructor) {
  std::string path;
  {
    ASSERT_OK_AND_ASSIGN(auto dir, TestDir::Create("harness"));
    path = dir->path();
    EXPECT_EQ(path.rfind("/tmp/fltest-" + std::to_string(getpid()) + "-", 0), 0u);
    ASSERT_OK(dir->WriteFile("x", "y"));
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace faultline::itest
