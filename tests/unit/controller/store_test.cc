#include "controller/store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fmt/format.h>

#include <filesystem>

namespace faultline::controller {
namespace {

// A temporary folder named fltest-<pid>-store, removed at the end.
class TempDir {
 public:
  TempDir() : path_(std::filesystem::temp_directory_path() /
                    fmt::format("fltest-{}-store", getpid())) {
    std::filesystem::remove_all(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

v1::RunReport MakeRun(const std::string& id, int64_t started, const std::string& state) {
  v1::RunReport r;
  r.set_run_id(id);
  r.set_experiment("exp-" + id);
  r.set_state(state);
  r.set_verdict(state == "running" ? "" : "pass");
  r.set_started_unix_ns(started);
  r.set_time_to_recover_ms(1234.5);
  r.add_agents("10.0.0.1:7000");
  auto* e = r.add_timeline();
  e->set_kind("injected");
  e->set_unix_ns(started + 5);
  e->set_agent("n1");
  return r;
}

TEST(Store, AgentsRoundTripAndUpdate) {
  auto store = Store::Open(":memory:");
  ASSERT_TRUE(store.ok()) << store.status();
  StoredAgent a;
  a.address = "10.0.0.1:7000";
  a.info.set_name("n1");
  (*a.info.mutable_labels())["zone"] = "a";
  a.registered_unix_ns = 10;
  a.last_heartbeat_unix_ns = 10;
  ASSERT_TRUE((*store)->UpsertAgent(a).ok());
  a.address = "10.0.0.1:7001";
  a.registered_unix_ns = 99;  // not overwritten by an update
  a.last_heartbeat_unix_ns = 20;
  ASSERT_TRUE((*store)->UpsertAgent(a).ok());
  auto agents = (*store)->ListAgents();
  ASSERT_TRUE(agents.ok());
  ASSERT_EQ(agents->size(), 1u);
  EXPECT_EQ((*agents)[0].address, "10.0.0.1:7001");
  EXPECT_EQ((*agents)[0].info.labels().at("zone"), "a");
  EXPECT_EQ((*agents)[0].registered_unix_ns, 10);
  EXPECT_EQ((*agents)[0].last_heartbeat_unix_ns, 20);
}

TEST(Store, RunsSurviveReopenAndInFlightOnesAreInterrupted) {
  TempDir dir;
  const std::string db = dir.File("sub/faultline.db");
  {
    auto store = Store::Open(db);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->SaveRun(MakeRun("r1", 100, "done")).ok());
    ASSERT_TRUE((*store)->SaveRun(MakeRun("r2", 200, "running")).ok());
    // Saving again replaces (and does not duplicate events).
    ASSERT_TRUE((*store)->SaveRun(MakeRun("r2", 200, "running")).ok());
  }
  auto store = Store::Open(db);
  ASSERT_TRUE(store.ok()) << store.status();
  auto interrupted = (*store)->MarkInterrupted();
  ASSERT_TRUE(interrupted.ok());
  ASSERT_EQ(interrupted->size(), 1u);
  EXPECT_EQ((*interrupted)[0].run_id(), "r2");
  EXPECT_EQ((*interrupted)[0].agents(0), "10.0.0.1:7000");

  auto runs = (*store)->ListRuns(0);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 2u);
  EXPECT_EQ((*runs)[0].run_id(), "r2");  // newest first
  EXPECT_EQ((*runs)[0].state(), "interrupted");
  EXPECT_EQ((*runs)[0].verdict(), "interrupted");
  EXPECT_EQ((*runs)[0].timeline_size(), 0);  // lists carry no timeline
  EXPECT_EQ((*runs)[1].run_id(), "r1");

  auto r1 = (*store)->GetRun("r1");
  ASSERT_TRUE(r1.ok());
  EXPECT_EQ(r1->verdict(), "pass");
  EXPECT_DOUBLE_EQ(r1->time_to_recover_ms(), 1234.5);
  ASSERT_EQ(r1->timeline_size(), 1);
  EXPECT_EQ(r1->timeline(0).kind(), "injected");

  auto missing = (*store)->GetRun("nope");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE((*store)->MarkInterrupted()->empty());
  EXPECT_EQ((*store)->ListRuns(1)->size(), 1u);
}

TEST(Store, UnopenablePathIsAnError) {
  auto store = Store::Open("/proc/fltest-no/faultline.db");
  EXPECT_FALSE(store.ok());
}

}  // namespace
}  // namespace faultline::controller
