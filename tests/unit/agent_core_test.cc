// Ledger and FaultManager behaviour with a fake fault kind that records what
// the manager asked of it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <thread>

#include "agent/fault_manager.h"
#include "agent/ledger.h"
#include "agent/policy.h"

namespace faultline::agent {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

// A fault kind whose "kernel state" is a set of applied ids, shared across
// manager instances like the real kernel is across agent restarts. It serves
// a real kind of the oneof (disk-fill: reversible; kill: an action) and reads
// disk_fill.path as its knob ("/bad", "/fail-apply"; "/slow-plan" and
// "/slow-apply" wait in Plan or Apply until the test releases them).
class FakeHandler : public FaultHandler {
 public:
  explicit FakeHandler(v1::FaultSpec::KindCase kind_case) : kind_case_(kind_case) {}
  v1::FaultSpec::KindCase kind_case() const override { return kind_case_; }
  absl::Status Validate(const v1::FaultSpec& spec, const FaultContext&) const override {
    if (spec.disk_fill().path() == "/bad") return absl::InvalidArgumentError("path: bad");
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<std::string>> Plan(const v1::FaultSpec& spec, const FaultContext&,
                                                v1::FaultRecord* record) const override {
    if (spec.disk_fill().path() == "/slow-plan") Gate();
    record->set_target("thing " + spec.disk_fill().path());
    return std::vector<std::string>{"would do " + spec.disk_fill().path()};
  }
  absl::Status Apply(v1::FaultRecord* record, const FaultContext&) const override {
    if (record->spec().disk_fill().path() == "/slow-apply") Gate();
    std::lock_guard<std::mutex> l(mu);
    if (record->spec().disk_fill().path() == "/fail-apply") return absl::InternalError("apply failed");
    applied.insert(record->id());
    return absl::OkStatus();
  }
  absl::Status Revert(const v1::FaultRecord& record, const FaultContext&) const override {
    std::lock_guard<std::mutex> l(mu);
    if (fail_revert) return absl::InternalError("revert failed");
    applied.erase(record.id());
    ++reverts;
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<std::string>> Sweep(const FaultContext&) const override {
    return std::vector<std::string>(leftovers.begin(), leftovers.end());
  }

  bool IsApplied(const std::string& id) const {
    std::lock_guard<std::mutex> l(mu);
    return applied.contains(id);
  }
  // The gate of "/slow-plan" and "/slow-apply": closed until Release() (at
  // most 30 s, so a broken test ends).
  void Gate() const {
    std::unique_lock<std::mutex> l(gate_mu);
    ++waiting;
    gate_cv.wait_for(l, std::chrono::seconds(30), [&] { return released; });
    --waiting;
  }
  int Waiting() const {
    std::lock_guard<std::mutex> l(gate_mu);
    return waiting;
  }
  void Release() {
    std::lock_guard<std::mutex> l(gate_mu);
    released = true;
    gate_cv.notify_all();
  }
  void Close() {
    std::lock_guard<std::mutex> l(gate_mu);
    released = false;
  }

  mutable std::mutex mu;
  mutable std::set<std::string> applied;
  mutable std::mutex gate_mu;
  mutable std::condition_variable gate_cv;
  mutable int waiting = 0;
  bool released = false;
  mutable int reverts = 0;
  std::atomic<bool> fail_revert{false};
  std::vector<std::string> leftovers;

 private:
  v1::FaultSpec::KindCase kind_case_;
};

class ManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("fltest-" + std::to_string(getpid()) + "-core-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override {
    manager_.reset();
    fs::remove_all(dir_);
  }

  // A manager over the ledger in dir_, with `handler` (not owned: the fake
  // outlives managers, as the kernel outlives agents).
  void StartManager() {
    auto ledger = Ledger::Open(dir_.string());
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    std::vector<std::unique_ptr<FaultHandler>> handlers;
    handlers.push_back(std::make_unique<Forward>(&handler_));
    handlers.push_back(std::make_unique<FakeHandler>(v1::FaultSpec::kKill));  // an action
    FaultContext ctx;
    ctx.policy = &policy_;
    manager_ = std::make_unique<FaultManager>(std::move(*ledger), std::move(handlers), ctx);
    manager_->Start();
  }

  // A request for the fake (disk-fill) kind; `path` is the fake's knob.
  v1::InjectRequest Request(const std::string& path, const std::string& duration = "10s") {
    v1::InjectRequest r;
    r.mutable_spec()->mutable_disk_fill()->set_path(path);
    r.mutable_spec()->mutable_disk_fill()->set_percent(50);
    r.mutable_spec()->set_duration(duration);
    return r;
  }
  // A request for the action (kill) kind.
  static v1::InjectRequest ActionRequest() {
    v1::InjectRequest r;
    r.mutable_spec()->mutable_kill()->mutable_process()->set_name("x");
    return r;
  }

  size_t LedgerFiles() {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(dir_ / "ledger")) n += e.path().extension() == ".fault";
    return n;
  }

  // Delegates to a FakeHandler owned by the test.
  class Forward : public FaultHandler {
   public:
    explicit Forward(FakeHandler* h) : h_(h) {}
    v1::FaultSpec::KindCase kind_case() const override { return v1::FaultSpec::kDiskFill; }
    absl::Status Validate(const v1::FaultSpec& s, const FaultContext& c) const override { return h_->Validate(s, c); }
    absl::StatusOr<std::vector<std::string>> Plan(const v1::FaultSpec& s, const FaultContext& c,
                                                  v1::FaultRecord* r) const override { return h_->Plan(s, c, r); }
    absl::Status Apply(v1::FaultRecord* r, const FaultContext& c) const override { return h_->Apply(r, c); }
    absl::Status Revert(const v1::FaultRecord& r, const FaultContext& c) const override { return h_->Revert(r, c); }
    absl::StatusOr<std::vector<std::string>> Sweep(const FaultContext& c) const override { return h_->Sweep(c); }
   private:
    FakeHandler* h_;
  };

  fs::path dir_;
  v1::Policy policy_;
  FakeHandler handler_{v1::FaultSpec::kDiskFill};
  std::unique_ptr<FaultManager> manager_;
};

bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

TEST_F(ManagerTest, LedgerRecordWrittenBeforeApplyAndRemovedOnRevert) {
  StartManager();
  auto resp = manager_->Inject(Request("/a"));
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->fault().state(), v1::FAULT_STATE_ACTIVE);
  EXPECT_EQ(resp->fault().target(), "thing /a");
  EXPECT_EQ(LedgerFiles(), 1u);
  EXPECT_EQ(handler_.applied.count(resp->fault().id()), 1u);
  auto rev = manager_->Revert(resp->fault().id(), "request");
  ASSERT_TRUE(rev.ok());
  EXPECT_EQ(rev->state(), v1::FAULT_STATE_REVERTED);
  EXPECT_EQ(rev->revert_reason(), "request");
  EXPECT_EQ(LedgerFiles(), 0u);
  EXPECT_TRUE(handler_.applied.empty());
  EXPECT_EQ(manager_->Revert(resp->fault().id(), "request").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ManagerTest, FailedApplyLeavesNothing) {
  StartManager();
  auto resp = manager_->Inject(Request("/fail-apply"));
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(LedgerFiles(), 0u);
  EXPECT_TRUE(manager_->List().empty());
}

TEST_F(ManagerTest, DryRunChangesNothing) {
  StartManager();
  auto req = Request("/a");
  req.set_dry_run(true);
  auto resp = manager_->Inject(req);
  ASSERT_TRUE(resp.ok());
  EXPECT_THAT(resp->changes(), ::testing::ElementsAre("would do /a"));
  EXPECT_EQ(LedgerFiles(), 0u);
  EXPECT_TRUE(handler_.applied.empty());
  EXPECT_TRUE(manager_->List().empty());
}

TEST_F(ManagerTest, RevertedAtDeadline) {
  StartManager();
  auto resp = manager_->Inject(Request("/a", "200ms"));
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(manager_->List().size(), 1u);
  EXPECT_TRUE(WaitFor([&] { return manager_->List().empty(); }, std::chrono::seconds(2)));
  EXPECT_TRUE(handler_.applied.empty());
  EXPECT_EQ(LedgerFiles(), 0u);
}

TEST_F(ManagerTest, LapsedLeaseReverts_RenewedLeaseHolds) {
  StartManager();
  auto lapsing = Request("/lapse", "1m");
  lapsing.set_lease_id("run-1");
  lapsing.set_lease_ttl_ms(300);
  auto held = Request("/held", "1m");
  held.set_lease_id("run-2");
  held.set_lease_ttl_ms(300);
  auto a = manager_->Inject(lapsing);
  auto b = manager_->Inject(held);
  ASSERT_TRUE(a.ok() && b.ok());
  auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(900)) {
    ASSERT_EQ(*manager_->RenewLease("run-2", 300), 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  auto list = manager_->List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].lease_id(), "run-2");
  EXPECT_EQ(handler_.applied.count(a->fault().id()), 0u);
}

TEST_F(ManagerTest, RecoverRevertsWhatACrashedAgentLeft) {
  StartManager();
  auto resp = manager_->Inject(Request("/a", "10m"));
  ASSERT_TRUE(resp.ok());
  // Simulate a crash: the manager goes away without reverting (its ledger and
  // the "kernel" state stay).
  handler_.fail_revert = true;
  manager_.reset();  // the destructor's revert fails, like a SIGKILLed agent's never ran
  handler_.fail_revert = false;
  ASSERT_EQ(handler_.applied.count(resp->fault().id()), 1u);
  ASSERT_EQ(LedgerFiles(), 1u);

  handler_.leftovers = {"orphan-1"};
  StartManager();
  std::vector<std::string> swept;
  auto reverted = manager_->Recover(&swept);
  ASSERT_TRUE(reverted.ok()) << reverted.status();
  ASSERT_EQ(reverted->size(), 1u);
  EXPECT_EQ((*reverted)[0].id(), resp->fault().id());
  EXPECT_EQ((*reverted)[0].revert_reason(), "recovery");
  EXPECT_THAT(swept, ::testing::ElementsAre("disk-fill: orphan-1"));
  EXPECT_TRUE(handler_.applied.empty());
  EXPECT_EQ(LedgerFiles(), 0u);
}

TEST_F(ManagerTest, FailedRevertStaysActiveAndIsRetried) {
  StartManager();
  auto resp = manager_->Inject(Request("/a", "100ms"));
  ASSERT_TRUE(resp.ok());
  handler_.fail_revert = true;
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_EQ(manager_->List().size(), 1u);
  EXPECT_EQ(LedgerFiles(), 1u);
  handler_.fail_revert = false;
  EXPECT_TRUE(WaitFor([&] { return manager_->List().empty(); }, std::chrono::seconds(3)));
  EXPECT_EQ(LedgerFiles(), 0u);
}

TEST_F(ManagerTest, ShutdownRevertsEverything) {
  StartManager();
  ASSERT_TRUE(manager_->Inject(Request("/a", "10m")).ok());
  ASSERT_TRUE(manager_->Inject(Request("/b", "10m")).ok());
  EXPECT_EQ(handler_.applied.size(), 2u);
  manager_.reset();
  EXPECT_TRUE(handler_.applied.empty());
  EXPECT_EQ(LedgerFiles(), 0u);
}

TEST_F(ManagerTest, BadRequestsNameTheField) {
  policy_.add_allowed_kinds("kill");
  StartManager();
  struct Case {
    v1::InjectRequest req;
    absl::StatusCode code;
    std::string text;
  };
  std::vector<Case> cases;
  auto r = Request("/a");
  r.mutable_spec()->clear_kind();
  cases.push_back({r, absl::StatusCode::kInvalidArgument, "kind: give one fault kind (kill, pause,"});
  cases.push_back({Request("/a"), absl::StatusCode::kPermissionDenied,
                   "kind: \"disk-fill\" is not allowed by this agent's policy"});
  cases.push_back({Request("/a", ""), absl::StatusCode::kInvalidArgument, "duration: required"});
  cases.push_back({Request("/a", "soon"), absl::StatusCode::kInvalidArgument, "duration: invalid duration"});
  cases.push_back({Request("/a", "0s"), absl::StatusCode::kInvalidArgument, "duration: must be greater than 0"});
  cases.push_back({Request("/bad"), absl::StatusCode::kInvalidArgument, "path: bad"});
  r = Request("/a");
  r.set_lease_id("x");
  r.set_lease_ttl_ms(5);
  cases.push_back({r, absl::StatusCode::kInvalidArgument, "lease_ttl_ms: must be at least"});
  r = ActionRequest();
  r.mutable_spec()->set_duration("10s");
  cases.push_back({r, absl::StatusCode::kInvalidArgument, "duration: kill is a one-off action"});
  // The spec's own rules (spec::Validate) run before the handler's checks.
  r = Request("/a");
  r.mutable_spec()->mutable_disk_fill()->set_percent(150);
  cases.push_back({r, absl::StatusCode::kInvalidArgument,
                   "disk_fill.percent: must be between 1 and 100, got 150"});
  r = Request("relative");
  cases.push_back({r, absl::StatusCode::kInvalidArgument, "disk_fill.path: must be an absolute path"});
  // A kind this agent has no handler for.
  r = Request("/a");
  r.mutable_spec()->mutable_pause()->mutable_process()->set_name("x");
  cases.push_back({r, absl::StatusCode::kUnimplemented, "kind: this agent has no handler for pause"});
  // The policy is read at call time: check the refusal, then allow "disk-fill".
  policy_.clear_allowed_kinds();
  policy_.add_allowed_kinds("kill");
  policy_.add_allowed_kinds("pause");
  auto denied = manager_->Inject(cases[1].req);
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(denied.status().message()), HasSubstr(cases[1].text));
  policy_.add_allowed_kinds("disk-fill");
  for (size_t i = 0; i < cases.size(); ++i) {
    if (i == 1) continue;
    auto st = manager_->Inject(cases[i].req).status();
    EXPECT_EQ(st.code(), cases[i].code) << i << ": " << st;
    EXPECT_THAT(std::string(st.message()), HasSubstr(cases[i].text)) << i;
  }
  EXPECT_TRUE(manager_->List().empty());
  EXPECT_EQ(LedgerFiles(), 0u);
  EXPECT_TRUE(handler_.applied.empty());
}

// Issue 9: one lock covered plan, ledger fsync, apply and the reaper, and a
// slow scan delayed a 2 s pause's revert to 31 s. Another caller's inject,
// held inside its Plan and then inside its Apply, must not delay a fault's
// revert at its deadline: the revert happens while that inject still waits.
TEST_F(ManagerTest, DeadlineRevertIsNotDelayedByASlowPlanOrApply) {
  StartManager();
  for (const std::string slow : {"/slow-plan", "/slow-apply"}) {
    handler_.Close();
    auto due = manager_->Inject(Request("/due", "200ms"));
    ASSERT_TRUE(due.ok()) << due.status();
    std::thread other([&] { EXPECT_TRUE(manager_->Inject(Request(slow)).ok()) << slow; });
    ASSERT_TRUE(WaitFor([&] { return handler_.Waiting() == 1; }, std::chrono::seconds(10))) << slow;
    EXPECT_TRUE(WaitFor([&] { return !handler_.IsApplied(due->fault().id()); }, std::chrono::seconds(10)))
        << "the revert at the deadline waited for the inject held in " << slow;
    EXPECT_EQ(handler_.Waiting(), 1) << slow << " ended before the revert: nothing was shown";
    handler_.Release();
    other.join();
  }
  EXPECT_EQ(manager_->List().size(), 2u);  // the two slow ones, active for 10 s
}

// Leases last 100 ms to 1 h: a TTL of INT64_MAX once overflowed the clock.
TEST_F(ManagerTest, LeaseTtlIsBounded) {
  StartManager();
  for (const int64_t ttl : {int64_t{99}, int64_t{3'600'001}, INT64_MAX, INT64_MIN}) {
    auto r = Request("/a");
    r.set_lease_id("run-1");
    r.set_lease_ttl_ms(ttl);
    auto st = manager_->Inject(r).status();
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << ttl;
    EXPECT_THAT(std::string(st.message()), HasSubstr("lease_ttl_ms: must be at least 100 and at most 3600000"));
    EXPECT_EQ(manager_->RenewLease("run-1", ttl).status().code(), absl::StatusCode::kInvalidArgument);
  }
  auto r = Request("/a");
  r.set_lease_id("run-1");
  r.set_lease_ttl_ms(3'600'000);
  ASSERT_TRUE(manager_->Inject(r).ok());
  EXPECT_EQ(*manager_->RenewLease("run-1", 3'600'000), 1);
  EXPECT_TRUE(manager_->List().size() == 1 && handler_.applied.size() == 1);
}

TEST_F(ManagerTest, ActiveFaultsAreCappedByThePolicy) {
  EXPECT_EQ(PolicyMaxActiveFaults(v1::Policy()), 256u);
  policy_.set_max_active_faults(2);
  StartManager();
  auto a = manager_->Inject(Request("/a"));
  auto prepared = Request("/b");
  prepared.set_prepare_only(true);
  prepared.set_lease_id("run-1");
  prepared.set_lease_ttl_ms(10'000);
  ASSERT_TRUE(a.ok() && manager_->Inject(prepared).ok());  // prepared faults count too
  auto st = manager_->Inject(Request("/c")).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(st.message()), HasSubstr("max_active_faults: this agent holds 2 faults"));
  EXPECT_THAT(std::string(st.message()), HasSubstr("its policy allows 2"));
  ASSERT_TRUE(manager_->Revert(a->fault().id(), "request").ok());
  EXPECT_TRUE(manager_->Inject(Request("/c")).ok());
}

TEST_F(ManagerTest, DurationIsCappedByThePolicy) {
  policy_.set_max_duration("1m");
  StartManager();
  auto st = manager_->Inject(Request("/a", "61s")).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(st.message()),
              HasSubstr("duration: 61s is longer than this agent's policy allows (max_duration 1m)"));
  EXPECT_TRUE(manager_->Inject(Request("/a", "1m")).ok());
}

TEST_F(ManagerTest, NonReversibleActionIsNotLedgered) {
  StartManager();
  auto resp = manager_->Inject(ActionRequest());
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->fault().state(), v1::FAULT_STATE_DONE);
  EXPECT_EQ(LedgerFiles(), 0u);
  EXPECT_TRUE(manager_->List().empty());
}

TEST(LedgerTest, ReplaysRecordsAndSetsAsideCorruptOnes) {
  fs::path dir = fs::temp_directory_path() / ("fltest-" + std::to_string(getpid()) + "-ledger");
  fs::remove_all(dir);
  {
    auto ledger = Ledger::Open(dir.string());
    ASSERT_TRUE(ledger.ok());
    v1::FaultRecord a, b;
    a.set_id("fa");
    a.set_injected_mono_ns(2);
    a.mutable_spec()->mutable_pause()->mutable_process()->set_name("x");
    b.set_id("fb");
    b.set_injected_mono_ns(1);
    ASSERT_TRUE((*ledger)->Put(a).ok());
    ASSERT_TRUE((*ledger)->Put(b).ok());
    std::ofstream(dir / "ledger" / "fc.fault") << "\xff\xff garbage";
    // A second agent on the same state dir is refused while this one holds it.
    auto second = Ledger::Open(dir.string());
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(second.status().message()), HasSubstr("in use by another faultline-agent"));
  }
  auto ledger = Ledger::Open(dir.string());
  ASSERT_TRUE(ledger.ok());
  std::vector<std::string> problems;
  auto records = (*ledger)->Load(&problems);
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[0].id(), "fb");  // oldest first
  EXPECT_EQ((*records)[1].spec().kind_case(), v1::FaultSpec::kPause);
  EXPECT_EQ((*records)[1].spec().pause().process().name(), "x");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_TRUE(fs::exists(dir / "ledger" / "fc.fault.corrupt"));
  ASSERT_TRUE((*ledger)->Remove("fa").ok());
  ASSERT_TRUE((*ledger)->Remove("fa").ok());  // idempotent
  EXPECT_EQ((*ledger)->Load(nullptr)->size(), 1u);
  ledger->reset();
  fs::remove_all(dir);
}

TEST(PolicyTest, LoadsAndRejectsUnknownKinds) {
  fs::path p = fs::temp_directory_path() / ("fltest-" + std::to_string(getpid()) + "-policy.yaml");
  std::ofstream(p) << "allowed_kinds: [pause, kil]\ndisk_fill_ceilings: [{mount: data, max_percent: 120}]\n";
  auto policy = LoadPolicy(p.string(), {"kill", "pause"});
  ASSERT_FALSE(policy.ok());
  const std::string msg(policy.status().message());
  EXPECT_THAT(msg, HasSubstr("allowed_kinds[1]: unknown fault kind \"kil\""));
  EXPECT_THAT(msg, HasSubstr("disk_fill_ceilings[0].mount: must be an absolute path"));
  EXPECT_THAT(msg, HasSubstr("disk_fill_ceilings[0].max_percent"));
  std::ofstream(p) << "allowed_kinds: [pause]\nprotected_processes: [sshd]\n";
  policy = LoadPolicy(p.string(), {"kill", "pause"});
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_TRUE(PolicyAllows(*policy, "pause"));
  EXPECT_FALSE(PolicyAllows(*policy, "kill"));
  EXPECT_TRUE(PolicyAllows(v1::Policy(), "kill"));
  fs::remove(p);
}

TEST(PolicyTest, DiskFillCeilingsAreCheckedAtLoadNamingTheField) {
  fs::path p = fs::temp_directory_path() / ("fltest-" + std::to_string(getpid()) + "-ceil.yaml");
  std::ofstream(p) << "disk_fill_ceilings:\n"
                      "  - {mount: \"\", max_percent: 90}\n"
                      "  - {mount: var/lib, max_percent: 90}\n"
                      "  - {mount: /, max_percent: 0}\n"
                      "  - {mount: /data, max_percent: 100.5}\n"
                      "  - {mount: /srv, max_percent: -5}\n";
  auto policy = LoadPolicy(p.string(), {"disk-fill"});
  ASSERT_FALSE(policy.ok());
  EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string msg(policy.status().message());
  EXPECT_THAT(msg, HasSubstr("disk_fill_ceilings[0].mount: required"));
  EXPECT_THAT(msg, HasSubstr("disk_fill_ceilings[1].mount: must be an absolute path, got \"var/lib\""));
  EXPECT_THAT(msg, HasSubstr("disk_fill_ceilings[2].max_percent: must be more than 0 and at most 100, got 0"));
  EXPECT_THAT(msg, HasSubstr("disk_fill_ceilings[3].max_percent: must be more than 0 and at most 100, got 100.5"));
  EXPECT_THAT(msg, HasSubstr("disk_fill_ceilings[4].max_percent"));
  EXPECT_THAT(msg, Not(HasSubstr("disk_fill_ceilings[0].max_percent")));
  // The bounds themselves, and the tmpfs opt-in.
  std::ofstream(p) << "disk_fill_ceilings: [{mount: /, max_percent: 100}, {mount: /d, max_percent: 0.5}]\n"
                      "disk_fill_allow_tmpfs: true\n";
  policy = LoadPolicy(p.string(), {"disk-fill"});
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_TRUE(policy->disk_fill_allow_tmpfs());
  EXPECT_FALSE(v1::Policy().disk_fill_allow_tmpfs());
  fs::remove(p);
}

TEST(PolicyTest, NamesAndCidrsThatWouldProtectNothingAreRefused) {
  fs::path p = fs::temp_directory_path() / ("fltest-" + std::to_string(getpid()) + "-prot.yaml");
  std::ofstream(p) << "protected_processes: [sshd, postgres-checkpointer]\n"
                      "protected_cidrs: [10.0.0.0/8, 10.0.0.300/8, ::1/129]\n";
  auto policy = LoadPolicy(p.string(), {"kill"});
  ASSERT_FALSE(policy.ok());
  const std::string msg(policy.status().message());
  EXPECT_THAT(msg, HasSubstr("protected_processes[1]: a process name (comm) of 1 to 15 "
                             "characters, got \"postgres-checkpointer\""));
  EXPECT_THAT(msg, HasSubstr("protected_cidrs[1]:"));
  EXPECT_THAT(msg, HasSubstr("protected_cidrs[2]:"));
  EXPECT_THAT(msg, Not(HasSubstr("protected_cidrs[0]")));
  fs::remove(p);
}

TEST(PolicyTest, MaxDurationIsParsedAtLoad) {
  fs::path p = fs::temp_directory_path() / ("fltest-" + std::to_string(getpid()) + "-maxdur.yaml");
  for (const std::string bad : {"soon", "0s", "25h"}) {
    std::ofstream(p) << "max_duration: " << bad << "\nmax_active_faults: 8\n";
    auto policy = LoadPolicy(p.string(), {"kill"});
    ASSERT_FALSE(policy.ok()) << bad;
    EXPECT_THAT(std::string(policy.status().message()), HasSubstr("max_duration: ")) << bad;
  }
  std::ofstream(p) << "max_duration: 1h\nmax_active_faults: 8\n";
  auto policy = LoadPolicy(p.string(), {"kill"});
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(*PolicyMaxDuration(*policy), std::chrono::hours(1));
  EXPECT_EQ(PolicyMaxActiveFaults(*policy), 8u);
  EXPECT_EQ(*PolicyMaxDuration(v1::Policy()), std::chrono::hours(24));
  fs::remove(p);
}

TEST(PolicyTest, ExecRulesAreCheckedAtLoad) {
  fs::path p = fs::temp_directory_path() / ("fltest-" + std::to_string(getpid()) + "-exec.yaml");
  std::ofstream(p) << "exec: {allow: [{argv: [db-check]}], user: root}\n";
  auto policy = LoadPolicy(p.string(), {"kill"});
  ASSERT_FALSE(policy.ok());
  EXPECT_THAT(std::string(policy.status().message()),
              HasSubstr("exec.allow[0].argv[0]: must be an absolute path"));
  std::ofstream(p) << "exec:\n  allow:\n    - {argv: [/usr/local/bin/db-check]}\n"
                      "    - {argv_prefix: [/usr/bin/redis-cli, -h]}\n  user: nobody\n";
  policy = LoadPolicy(p.string(), {"kill"});
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->exec().allow_size(), 2);
  fs::remove(p);
}

}  // namespace
}  // namespace faultline::agent
