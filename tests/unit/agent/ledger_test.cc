// The ledger's start-up housekeeping: a record a killed agent was writing
// (<id>.fault.tmp, never renamed into place) is removed when the state folder
// is opened again; the state folder's agent id is made once and kept; the
// record reader refuses what is not a record of that file's id.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "agent/ledger.h"
#include "common/endpoint.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace faultline::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// A fresh folder fltest-<pid>-ledger-XXXXXX under TMPDIR, removed at the end.
class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp != nullptr ? tmp : "/tmp") + "/fltest-" +
                        std::to_string(::getpid()) + "-ledger-XXXXXX";
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    dir_ = templ;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Write(const std::string& path, const std::string& data) {
    std::ofstream(path, std::ios::binary) << data;
  }
  std::vector<std::string> Names(const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(e.path().filename());
    std::sort(out.begin(), out.end());
    return out;
  }

  std::string dir_;
};

TEST_F(LedgerTest, HalfWrittenRecordsAreRemovedAtOpen) {
  v1::FaultRecord rec;
  rec.set_id("f0000000000aa");
  {
    auto ledger = Ledger::Open(dir_);
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    ASSERT_TRUE((*ledger)->Put(rec).ok());
    EXPECT_THAT((*ledger)->removed_tmp(), IsEmpty());
  }
  // What a SIGKILL between write and rename leaves, and files that are not ours.
  Write(dir_ + "/ledger/f0000000000bb.fault.tmp", "\x0a\x05torn");
  Write(dir_ + "/ledger/notes.tmp", "operator's");
  Write(dir_ + "/ledger/x y.fault.tmp", "not an id");
  auto ledger = Ledger::Open(dir_);
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  EXPECT_THAT((*ledger)->removed_tmp(), ElementsAre(dir_ + "/ledger/f0000000000bb.fault.tmp"));
  EXPECT_THAT(Names(dir_ + "/ledger"), ElementsAre("f0000000000aa.fault", "notes.tmp", "x y.fault.tmp"));
  std::vector<std::string> problems;
  auto records = (*ledger)->Load(&problems);
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ((*records)[0].id(), "f0000000000aa");
  EXPECT_THAT(problems, IsEmpty());
}

TEST_F(LedgerTest, AgentIdIsMadeOnceAndKept) {
  std::string first;
  {
    auto ledger = Ledger::Open(dir_);
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    first = (*ledger)->agent_id();
    EXPECT_TRUE(IsValidAgentId(first)) << first;
  }
  auto again = Ledger::Open(dir_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->agent_id(), first);
  // Another state folder, another identity.
  const std::string other = dir_ + "/other";
  auto ledger2 = Ledger::Open(other);
  ASSERT_TRUE(ledger2.ok());
  EXPECT_NE((*ledger2)->agent_id(), first);
  // A damaged id file is replaced by a valid one.
  again->reset();
  Write(dir_ + "/agent-id", "../../etc\n");
  auto third = Ledger::Open(dir_);
  ASSERT_TRUE(third.ok());
  EXPECT_TRUE(IsValidAgentId((*third)->agent_id()));
  EXPECT_FALSE(IsValidAgentId("ABCDEF012345"));
  EXPECT_FALSE(IsValidAgentId("0123"));
}

// A FIFO or a regular file as the state folder is refused naming the flag
// (it used to say only "mkdir .../ledger: Not a directory").
TEST_F(LedgerTest, StateDirThatIsNotAFolderNamesTheFlag) {
  const std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string file = dir_ + "/file";
  Write(file, "x");
  for (const std::string& path : {fifo, file}) {
    auto ledger = Ledger::Open(path);
    ASSERT_FALSE(ledger.ok()) << path;
    EXPECT_EQ(ledger.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(ledger.status().message()),
                ::testing::HasSubstr("--state-dir " + path + ": not a folder"));
  }
  auto nested = Ledger::Open(file + "/sub");
  ASSERT_FALSE(nested.ok());
  EXPECT_THAT(std::string(nested.status().message()), ::testing::StartsWith("--state-dir "));
  EXPECT_TRUE(Ledger::Open(dir_ + "/new/state").ok());
}

TEST_F(LedgerTest, RecordReaderChecksTheId) {
  v1::FaultRecord rec;
  rec.set_id("f0000000000aa");
  rec.set_target("x");
  const std::string bytes = rec.SerializeAsString();
  auto ok = ParseLedgerRecord(bytes, "f0000000000aa");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->target(), "x");
  EXPECT_FALSE(ParseLedgerRecord(bytes, "f0000000000bb").ok());
  EXPECT_FALSE(ParseLedgerRecord("\xff\xff\xff", "f0000000000aa").ok());
  // Torn: the last field cut short.
  EXPECT_FALSE(ParseLedgerRecord(bytes.substr(0, bytes.size() - 1), "f0000000000aa").ok());
}

}  // namespace
}  // namespace faultline::agent
