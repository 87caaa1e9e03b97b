#include "agent/faults/disk_fill_fault.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spec/fault_spec.h"

namespace faultline::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using ::testing::UnorderedElementsAre;

constexpr uint64_t kBlock = 4096;

// A temporary folder named fltest-<pid>-<suffix>, removed with its contents.
class TempDir {
 public:
  explicit TempDir(const std::string& suffix) {
    std::string tmpl = "/tmp/fltest-" + std::to_string(getpid()) + "-" + suffix + "XXXXXX";
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string Touch(const std::string& name) const {
    const std::string p = path_ + "/" + name;
    std::ofstream(p) << "x";
    return p;
  }

 private:
  std::string path_;
};

bool Exists(const std::string& p) { return access(p.c_str(), F_OK) == 0; }

// Every path is a directory; usage and mounts are whatever the test sets. A
// path's st_dev is its mount's device unless `st_devs` says otherwise.
class FakeFilesystem : public Filesystem {
 public:
  FakeFilesystem(std::vector<MountEntry> mounts, FsUsage usage,
                 std::map<std::string, uint64_t> st_devs = {})
      : mounts_(std::move(mounts)), usage_(usage), st_devs_(std::move(st_devs)) {}
  absl::StatusOr<std::string> RealDirectory(const std::string& path) const override {
    if (path.find("missing") != std::string::npos) {
      return absl::FailedPreconditionError("path: " + path + " does not exist");
    }
    return path;
  }
  absl::StatusOr<FsUsage> StatFs(const std::string& /*path*/) const override { return usage_; }
  absl::StatusOr<uint64_t> Device(const std::string& path) const override {
    if (path.find("missing") != std::string::npos) return absl::FailedPreconditionError("stat");
    if (auto it = st_devs_.find(path); it != st_devs_.end()) return it->second;
    std::optional<MountEntry> m = FindMount(mounts_, path);
    if (!m.has_value()) return absl::FailedPreconditionError("no mount");
    return m->dev;
  }
  absl::StatusOr<std::vector<MountEntry>> Mounts() const override { return mounts_; }

 private:
  std::vector<MountEntry> mounts_;
  FsUsage usage_;
  std::map<std::string, uint64_t> st_devs_;
};

// `dev` 0: a device of its own (each call a new one).
MountEntry Mount(std::string point, std::string type = "ext4", bool ro = false, uint64_t dev = 0) {
  static uint64_t next_dev = 1000;
  MountEntry m;
  m.dev = dev != 0 ? dev : next_dev++;
  m.mount_point = std::move(point);
  m.fs_type = std::move(type);
  m.source = "/dev/x";
  m.read_only = ro;
  return m;
}

// 1000 blocks, 100 used, 900 free and available.
FsUsage TenPercentUsed() { return FsUsage{kBlock, 1000, 900, 900}; }

v1::FaultSpec PercentSpec(double p, const std::string& path = "/data") {
  v1::FaultSpec s;
  s.mutable_disk_fill()->set_path(path);
  s.mutable_disk_fill()->set_percent(p);
  return s;
}

TEST(FillRequestTest, PercentMustBeBetweenOneAndHundred) {
  auto r = ParseFillRequest(PercentSpec(150).disk_fill());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "percent: must be between 1 and 100, got 150");
  EXPECT_EQ(ParseFillRequest(PercentSpec(0.5).disk_fill()).status().message(),
            "percent: must be between 1 and 100, got 0.5");
  EXPECT_FALSE(ParseFillRequest(PercentSpec(-3).disk_fill()).ok());
  EXPECT_TRUE(ParseFillRequest(PercentSpec(1).disk_fill()).ok());
  EXPECT_TRUE(ParseFillRequest(PercentSpec(100).disk_fill()).ok());
}

TEST(FillRequestTest, ExactlyOneAmount) {
  v1::DiskFillFault s;
  s.set_path("/data");
  auto r = ParseFillRequest(s);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "percent: give exactly one of percent, leave_free, bytes");
  s.set_percent(50);
  s.set_bytes("1G");
  r = ParseFillRequest(s);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "bytes: give only one of percent, leave_free, bytes, got percent and bytes");
}

TEST(FillRequestTest, SizesAreParsedAndNamed) {
  v1::DiskFillFault s;
  s.set_leave_free("100M");
  auto r = ParseFillRequest(s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->by, FillRequest::By::kLeaveFree);
  EXPECT_EQ(r->size, 100u << 20);
  s.set_leave_free("lots");
  EXPECT_THAT(std::string(ParseFillRequest(s).status().message()), StartsWith("leave_free: "));
  s.clear_leave_free();
  s.set_bytes("0");
  EXPECT_EQ(ParseFillRequest(s).status().message(), "bytes: must be greater than 0");
  s.set_bytes("2x");
  EXPECT_THAT(std::string(ParseFillRequest(s).status().message()), StartsWith("bytes: "));
  s.set_bytes("1G");
  EXPECT_EQ(ParseFillRequest(s)->size, 1u << 30);
}

TEST(ComputeFillTest, PercentFillsToTheTarget) {
  FillRequest r{FillRequest::By::kPercent, "percent", 90, 0};
  auto plan = ComputeFill(r, TenPercentUsed(), "/data");
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->size, 1000 * kBlock);
  EXPECT_EQ(plan->used, 100 * kBlock);
  EXPECT_EQ(plan->bytes, 800 * kBlock);
  EXPECT_DOUBLE_EQ(plan->used_percent_before, 10);
  EXPECT_DOUBLE_EQ(plan->used_percent_after, 90);
}

TEST(ComputeFillTest, PercentSizeExcludesRootReservedBlocks) {
  // 1000 blocks, 600 free of which 50 are reserved: df's size is 950 blocks.
  FillRequest r{FillRequest::By::kPercent, "percent", 90, 0};
  auto plan = ComputeFill(r, FsUsage{kBlock, 1000, 600, 550}, "/");
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->size, 950 * kBlock);
  EXPECT_EQ(plan->used, 400 * kBlock);
  EXPECT_EQ(plan->bytes, 455 * kBlock);  // ceil(0.9 * 950) = 855 blocks used
}

TEST(ComputeFillTest, PercentRoundsUpToWholeBlocks) {
  FillRequest r{FillRequest::By::kPercent, "percent", 45.05, 0};  // 450.5 blocks
  auto plan = ComputeFill(r, TenPercentUsed(), "/data");
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->bytes, 351 * kBlock);
  EXPECT_GE(plan->used_percent_after, 45.05);
}

TEST(ComputeFillTest, PercentHundredTakesEverythingAvailable) {
  FillRequest r{FillRequest::By::kPercent, "percent", 100, 0};
  auto plan = ComputeFill(r, FsUsage{kBlock, 1000, 600, 550}, "/");
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->bytes, 550 * kBlock);
  EXPECT_DOUBLE_EQ(plan->used_percent_after, 100);
}

TEST(ComputeFillTest, PercentAlreadyReachedAddsNothing) {
  FillRequest r{FillRequest::By::kPercent, "percent", 5, 0};
  auto plan = ComputeFill(r, TenPercentUsed(), "/data");
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->bytes, 0u);
  EXPECT_DOUBLE_EQ(plan->used_percent_after, 10);
}

TEST(ComputeFillTest, LeaveFree) {
  FillRequest r{FillRequest::By::kLeaveFree, "leave_free", 0, 100 * kBlock};
  auto plan = ComputeFill(r, TenPercentUsed(), "/data");
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->bytes, 800 * kBlock);
  // Rounded down to whole blocks so at least leave_free stays free.
  r.size = 100 * kBlock + 1;
  EXPECT_EQ(ComputeFill(r, TenPercentUsed(), "/data")->bytes, 799 * kBlock);
  r.size = 0;
  EXPECT_EQ(ComputeFill(r, TenPercentUsed(), "/data")->bytes, 900 * kBlock);
  // Less than that is free already: nothing to add.
  r.size = 2000 * kBlock;
  EXPECT_EQ(ComputeFill(r, TenPercentUsed(), "/data")->bytes, 0u);
}

TEST(ComputeFillTest, BytesAsGivenButNotMoreThanFree) {
  FillRequest r{FillRequest::By::kBytes, "bytes", 0, 12345};
  EXPECT_EQ(ComputeFill(r, TenPercentUsed(), "/data")->bytes, 12345u);
  r.size = 900 * kBlock;
  EXPECT_EQ(ComputeFill(r, TenPercentUsed(), "/data")->bytes, 900 * kBlock);
  r.size = 900 * kBlock + 1;
  auto plan = ComputeFill(r, TenPercentUsed(), "/data");
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(plan.status().message()), StartsWith("bytes: "));
  EXPECT_THAT(std::string(plan.status().message()), HasSubstr("is free on /data"));
}

TEST(ComputeFillTest, EmptyFilesystemIsFailedPrecondition) {
  FillRequest r{FillRequest::By::kPercent, "percent", 50, 0};
  EXPECT_EQ(ComputeFill(r, FsUsage{kBlock, 0, 0, 0}, "/x").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(CeilingTest, RefusesAFillAboveTheCeiling) {
  const Ceiling ceiling{90, "/"};
  FillRequest r{FillRequest::By::kPercent, "percent", 97, 0};
  FillPlan plan = *ComputeFill(r, TenPercentUsed(), "/");
  absl::Status s = CheckCeiling(r, plan, "/", ceiling);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "percent: filling would take / to 97%, above the policy ceiling of 90%");
  // Exactly at the ceiling is allowed, block rounding notwithstanding.
  r.percent = 90;
  EXPECT_TRUE(CheckCeiling(r, *ComputeFill(r, FsUsage{kBlock, 1000, 600, 550}, "/"), "/", ceiling).ok());
  // The ceiling came from another mount of the same filesystem: both named.
  r.percent = 97;
  s = CheckCeiling(r, plan, "/mnt/root-bind", ceiling);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(),
            "percent: filling would take /mnt/root-bind to 97%, above the policy ceiling of 90% "
            "(disk_fill_ceilings: / is the same filesystem)");
}

TEST(CeilingTest, TheDefaultCeilingIs95AndSaysHowToRaiseIt) {
  EXPECT_EQ(Ceiling().max_percent, 95);
  EXPECT_EQ(kDefaultFillCeilingPercent, 95);
  FillRequest r{FillRequest::By::kPercent, "percent", 96, 0};
  absl::Status s = CheckCeiling(r, *ComputeFill(r, TenPercentUsed(), "/data"), "/data", Ceiling());
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(),
            "percent: filling would take /data to 96%, above the default ceiling of 95% (the "
            "policy's disk_fill_ceilings name no mount on this filesystem; add one, e.g. "
            "{mount: /data, max_percent: 100}, to allow more)");
  r.percent = 95;
  EXPECT_TRUE(CheckCeiling(r, *ComputeFill(r, TenPercentUsed(), "/data"), "/data", Ceiling()).ok());
  // A policy ceiling may be higher than the default.
  r.percent = 100;
  EXPECT_TRUE(CheckCeiling(r, *ComputeFill(r, TenPercentUsed(), "/data"), "/data",
                           Ceiling{100, "/data"}).ok());
}

TEST(CeilingTest, AppliesToSizesToo) {
  const Ceiling ceiling{80.5, "/data/"};
  FillRequest r{FillRequest::By::kBytes, "bytes", 0, 850 * kBlock};  // 10% -> 95%
  absl::Status s = CheckCeiling(r, *ComputeFill(r, TenPercentUsed(), "/data"), "/data", ceiling);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "bytes: filling would take /data to 95%, above the policy ceiling of 80.5%");
  r.size = 700 * kBlock;  // -> 80%
  EXPECT_TRUE(CheckCeiling(r, *ComputeFill(r, TenPercentUsed(), "/data"), "/data", ceiling).ok());
  FillRequest lf{FillRequest::By::kLeaveFree, "leave_free", 0, 0};
  s = CheckCeiling(lf, *ComputeFill(lf, TenPercentUsed(), "/data"), "/data", ceiling);
  EXPECT_THAT(std::string(s.message()), StartsWith("leave_free: filling would take /data to 100%"));
  // leave_free 0 under the default ceiling: refused as well.
  s = CheckCeiling(lf, *ComputeFill(lf, TenPercentUsed(), "/data"), "/data", Ceiling());
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
}

TEST(CeilingTest, AFillThatAddsNothingIsNeverRefused) {
  FillRequest r{FillRequest::By::kPercent, "percent", 8, 0};  // already at 10%
  EXPECT_TRUE(CheckCeiling(r, *ComputeFill(r, TenPercentUsed(), "/"), "/", Ceiling{5, "/"}).ok());
}

TEST(FormatPercentTest, Trims) {
  EXPECT_EQ(FormatPercent(97), "97");
  EXPECT_EQ(FormatPercent(90.25), "90.25");
  EXPECT_EQ(FormatPercent(80.5), "80.5");
  EXPECT_EQ(FormatPercent(100.0 / 3), "33.33");
  EXPECT_EQ(FormatPercent(0), "0");
}

TEST(MountInfoTest, ParsesAndUnescapes) {
  const std::string text =
      "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n"
      "23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
      "24 22 0:22 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw\n"
      "40 22 0:40 / /mnt/my\\040disk ro,relatime - tmpfs none rw,size=1024k\n"
      "41 22 8:2 /sub /srv rw master:3 shared:4 - xfs /dev/sda2 rw\n"
      "garbage line\n";
  std::vector<MountEntry> m = ParseMountInfo(text);
  ASSERT_EQ(m.size(), 5u);
  EXPECT_EQ(m[0].mount_point, "/");
  EXPECT_EQ(m[0].dev, makedev(8, 1));
  EXPECT_EQ(m[3].dev, makedev(0, 40));
  EXPECT_EQ(m[0].fs_type, "ext4");
  EXPECT_EQ(m[0].source, "/dev/sda1");
  EXPECT_FALSE(m[0].read_only);
  EXPECT_EQ(m[2].fs_type, "cgroup2");
  EXPECT_EQ(m[3].mount_point, "/mnt/my disk");
  EXPECT_TRUE(m[3].read_only);
  EXPECT_EQ(m[4].mount_point, "/srv");
  EXPECT_EQ(m[4].fs_type, "xfs");
}

TEST(MountInfoTest, FindMountTakesTheLongestPrefixOnAPathBoundary) {
  std::vector<MountEntry> mounts = {Mount("/"), Mount("/mnt/a", "tmpfs"), Mount("/mnt/ab", "xfs")};
  EXPECT_EQ(FindMount(mounts, "/mnt/a/x/y")->mount_point, "/mnt/a");
  EXPECT_EQ(FindMount(mounts, "/mnt/a")->mount_point, "/mnt/a");
  EXPECT_EQ(FindMount(mounts, "/mnt/abc")->mount_point, "/");
  EXPECT_EQ(FindMount(mounts, "/mnt/ab/c")->mount_point, "/mnt/ab");
  EXPECT_EQ(FindMount(mounts, "/etc")->mount_point, "/");
  // Mounted on top of each other: the last one listed is visible.
  mounts.push_back(Mount("/mnt/a", "ext4"));
  EXPECT_EQ(FindMount(mounts, "/mnt/a/x")->fs_type, "ext4");
  EXPECT_FALSE(FindMount({Mount("/mnt/a")}, "/etc").has_value());
}

TEST(MountInfoTest, PseudoFilesystems) {
  for (const char* t : {"proc", "sysfs", "cgroup", "cgroup2", "devtmpfs", "devpts", "mqueue", "bpf",
                        "tracefs", "debugfs", "securityfs", "pstore", "configfs", "fusectl", "autofs",
                        "hugetlbfs", "nsfs", "binfmt_misc", "efivarfs"}) {
    EXPECT_TRUE(IsPseudoFilesystem(t)) << t;
  }
  for (const char* t : {"ext4", "xfs", "tmpfs", "btrfs", "overlay"}) {
    EXPECT_FALSE(IsPseudoFilesystem(t)) << t;
  }
  EXPECT_TRUE(IsRamFilesystem("tmpfs"));
  EXPECT_TRUE(IsRamFilesystem("ramfs"));
  EXPECT_FALSE(IsRamFilesystem("ext4"));
}

// The handler, with a fake view of the system whose mount root is a real
// temporary folder, so Apply/Revert/Sweep create and remove real (small) files.
class DiskFillHandlerTest : public ::testing::Test {
 protected:
  DiskFillHandlerTest() : dir_("disk") {
    std::filesystem::create_directories(dir_.path() + "/app/data");
    mounts_ = {Mount("/"), Mount("/proc", "proc"), Mount(dir_.path(), "tmpfs")};
    policy_.add_protected_processes("sshd");
    // The test folder is a tmpfs in the fake mount table: opt in explicitly.
    policy_.set_disk_fill_allow_tmpfs(true);
    ctx_.policy = &policy_;
    record_.set_id("0123abcd");
  }

  std::unique_ptr<FaultHandler> Handler(FsUsage usage = TenPercentUsed(),
                                        std::map<std::string, uint64_t> st_devs = {}) {
    return MakeDiskFillHandler(std::make_unique<FakeFilesystem>(mounts_, usage, std::move(st_devs)));
  }

  TempDir dir_;
  std::vector<MountEntry> mounts_;
  v1::Policy policy_;
  FaultContext ctx_;
  v1::FaultRecord record_;
};

TEST_F(DiskFillHandlerTest, Validation) {
  auto h = Handler();
  EXPECT_EQ(h->Kind(), "disk-fill");
  EXPECT_EQ(h->kind_case(), v1::FaultSpec::kDiskFill);
  EXPECT_TRUE(spec::KindFor(h->kind_case()).reversible);
  // The spec's rules are spec::Validate's (run by the FaultManager before the
  // handler); errors name the field's path in FaultSpec.
  v1::FaultSpec s = PercentSpec(90, "");
  s.set_duration("30s");
  EXPECT_EQ(spec::Validate(s).status().message(),
            "disk_fill.path: required (a directory on the filesystem to fill)");
  s.mutable_disk_fill()->set_path("data");
  EXPECT_EQ(spec::Validate(s).status().message(),
            "disk_fill.path: must be an absolute path, got \"data\"");
  s.mutable_disk_fill()->set_path("/data");
  s.mutable_disk_fill()->set_percent(150);
  absl::Status st = spec::Validate(s).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "disk_fill.percent: must be between 1 and 100, got 150");
  s.mutable_disk_fill()->set_percent(90);
  EXPECT_TRUE(spec::Validate(s).ok());
  EXPECT_TRUE(h->Validate(s, ctx_).ok());
}

TEST_F(DiskFillHandlerTest, PlanPutsTheFileAtTheMountRootAndChangesNothing) {
  auto h = Handler();
  v1::FaultSpec spec = PercentSpec(90, dir_.path() + "/app/data");
  *record_.mutable_spec() = spec;
  auto lines = h->Plan(spec, ctx_, &record_);
  ASSERT_TRUE(lines.ok()) << lines.status();
  const std::string file = dir_.path() + "/.faultline-fill-0123abcd";
  EXPECT_EQ(record_.disk_fill().file(), file);
  EXPECT_EQ(record_.disk_fill().mount(), dir_.path());
  EXPECT_EQ(record_.disk_fill().bytes(), 800 * kBlock);
  EXPECT_THAT(record_.target(), HasSubstr("10% -> 90% used"));
  ASSERT_EQ(lines->size(), 1u);
  EXPECT_THAT((*lines)[0], StartsWith("create " + file));
  EXPECT_FALSE(Exists(file));
}

TEST_F(DiskFillHandlerTest, PlanRefusals) {
  auto h = Handler();
  v1::FaultSpec spec = PercentSpec(90, dir_.path() + "/missing");
  absl::Status s = h->Plan(spec, ctx_, &record_).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), StartsWith("path: "));

  spec.mutable_disk_fill()->set_path("/proc/sys");
  s = h->Plan(spec, ctx_, &record_).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("proc filesystem"));

  mounts_.push_back(Mount(dir_.path() + "/app", "ext4", /*ro=*/true));
  s = Handler()->Plan(PercentSpec(90, dir_.path() + "/app/data"), ctx_, &record_).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("read-only"));

  spec = PercentSpec(90, dir_.path());
  spec.mutable_disk_fill()->clear_percent();
  spec.mutable_disk_fill()->set_bytes("1T");
  s = h->Plan(spec, ctx_, &record_).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), StartsWith("bytes: "));

  auto* c = policy_.add_disk_fill_ceilings();
  c->set_mount(dir_.path());
  c->set_max_percent(90);
  s = h->Plan(PercentSpec(97, dir_.path()), ctx_, &record_).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "percent: filling would take " + dir_.path() +
                             " to 97%, above the policy ceiling of 90%");

  v1::FaultRecord bad_id;
  bad_id.set_id("../../etc/x");
  EXPECT_FALSE(h->Plan(PercentSpec(50, dir_.path()), ctx_, &bad_id).ok());
  EXPECT_FALSE(record_.has_disk_fill());
}

TEST_F(DiskFillHandlerTest, ApplyAllocatesAndRevertUnlinksIdempotently) {
  // 64 KiB: a real allocation, kept tiny.
  auto h = Handler();
  v1::FaultSpec spec = PercentSpec(50, dir_.path());
  spec.mutable_disk_fill()->clear_percent();
  spec.mutable_disk_fill()->set_bytes("64K");
  *record_.mutable_spec() = spec;
  ASSERT_TRUE(h->Plan(spec, ctx_, &record_).ok());
  ASSERT_TRUE(h->Apply(&record_, ctx_).ok());
  const std::string file = record_.disk_fill().file();
  struct stat st {};
  ASSERT_EQ(stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 65536);
  EXPECT_GE(static_cast<uint64_t>(st.st_blocks) * 512, 65536u);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // Never reuses a file that exists.
  absl::Status again = h->Apply(&record_, ctx_);
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(again.message()), StartsWith("bytes: cannot create "));
  EXPECT_TRUE(Exists(file));

  // Revert from the record alone (as after a crash), twice.
  v1::FaultRecord from_ledger = record_;
  ASSERT_TRUE(h->Revert(from_ledger, ctx_).ok());
  EXPECT_FALSE(Exists(file));
  EXPECT_TRUE(h->Revert(from_ledger, ctx_).ok());
  // A record whose Plan never ran.
  EXPECT_TRUE(h->Revert(v1::FaultRecord(), ctx_).ok());
}

TEST_F(DiskFillHandlerTest, ApplyOfNothingCreatesAnEmptyTaggedFile) {
  auto h = Handler();
  v1::FaultSpec spec = PercentSpec(5, dir_.path());  // already at 10%
  *record_.mutable_spec() = spec;
  ASSERT_TRUE(h->Plan(spec, ctx_, &record_).ok());
  EXPECT_EQ(record_.disk_fill().bytes(), 0u);
  ASSERT_TRUE(h->Apply(&record_, ctx_).ok());
  EXPECT_TRUE(Exists(record_.disk_fill().file()));
  ASSERT_TRUE(h->Revert(record_, ctx_).ok());
  EXPECT_FALSE(Exists(record_.disk_fill().file()));
}

TEST_F(DiskFillHandlerTest, ApplyFailureLeavesNoFile) {
  auto h = Handler();
  // A spec as Validate passed it (Apply names the field it gave).
  record_.mutable_spec()->mutable_disk_fill()->set_bytes("1T");
  record_.mutable_disk_fill()->set_file(dir_.path() + "/.faultline-fill-0123abcd");
  record_.mutable_disk_fill()->set_mount(dir_.path());
  // A length fallocate(2) rejects up front (negative as off_t): the failure path
  // without allocating anything on this machine's disk.
  record_.mutable_disk_fill()->set_bytes((1ull << 63) + 4096);
  absl::Status s = h->Apply(&record_, ctx_);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), StartsWith("bytes: cannot allocate "));
  EXPECT_FALSE(Exists(record_.disk_fill().file()));
}

TEST_F(DiskFillHandlerTest, RevertTouchesOnlyFillFiles) {
  auto h = Handler();
  const std::string victim = dir_.Touch("precious.txt");
  v1::FaultRecord rec;
  rec.mutable_disk_fill()->set_file(victim);
  rec.mutable_disk_fill()->set_mount(dir_.path());
  // Refused and dropped (OK: nothing to retry), never deleted.
  EXPECT_TRUE(h->Revert(rec, ctx_).ok());
  EXPECT_TRUE(Exists(victim));
  rec.mutable_disk_fill()->set_file(dir_.path() + "/.faultline-fill-../precious.txt");
  EXPECT_TRUE(h->Revert(rec, ctx_).ok());
  EXPECT_TRUE(Exists(victim));
  EXPECT_FALSE(h->Apply(&rec, ctx_).ok());
}

// Regression (issue 9): a crafted ledger record, recovered at start-up or
// reverted normally, deletes nothing but this agent's own regular fill file
// for that very record.
TEST_F(DiskFillHandlerTest, CraftedLedgerRecordsAreRefusedAndDeleteNothing) {
  auto h = Handler();
  ctx_.agent_id = "0a1b2c3d4e5f";
  const std::string victim = dir_.Touch("precious.txt");
  const std::string theirs = dir_.Touch(".faultline-fill-ffffffffffff-f1");
  const std::string other_record = dir_.Touch(".faultline-fill-0a1b2c3d4e5f-f2");
  std::filesystem::create_directory(dir_.path() + "/.faultline-fill-0a1b2c3d4e5f-f3");
  std::filesystem::create_directory(dir_.path() + "/sub");
  const std::string elsewhere = dir_.Touch("sub/.faultline-fill-0a1b2c3d4e5f-f4");
  std::filesystem::create_symlink(victim, dir_.path() + "/.faultline-fill-0a1b2c3d4e5f-f5");
  struct Crafted {
    std::string id, file, mount;
  };
  const std::vector<Crafted> crafted = {
      {"f0", victim, dir_.path()},                                  // not a fill file
      {"f1", theirs, dir_.path()},                                  // another agent's
      {"f1", dir_.path() + "/.faultline-fill-f1", dir_.path()},     // untagged
      {"f9", other_record, dir_.path()},                            // another record's
      {"f3", dir_.path() + "/.faultline-fill-0a1b2c3d4e5f-f3", dir_.path()},  // a folder
      {"f4", elsewhere, dir_.path()},                               // not at the mount root
      {"f4", elsewhere, ""},                                        // no mount
      {"f5", dir_.path() + "/.faultline-fill-0a1b2c3d4e5f-f5", dir_.path()},  // a symlink
      {"../precious.txt", dir_.path() + "/.faultline-fill-0a1b2c3d4e5f-../precious.txt",
       dir_.path()},
  };
  for (const Crafted& c : crafted) {
    SCOPED_TRACE(c.file);
    v1::FaultRecord rec;
    rec.set_id(c.id);
    *rec.mutable_spec() = PercentSpec(50, dir_.path());
    rec.mutable_disk_fill()->set_file(c.file);
    rec.mutable_disk_fill()->set_mount(c.mount);
    EXPECT_TRUE(h->Revert(rec, ctx_).ok()) << "a refused record is dropped, not retried";
  }
  for (const std::string& kept : {victim, theirs, other_record, elsewhere,
                                  dir_.path() + "/.faultline-fill-0a1b2c3d4e5f-f3",
                                  dir_.path() + "/.faultline-fill-0a1b2c3d4e5f-f5"}) {
    EXPECT_TRUE(std::filesystem::exists(std::filesystem::symlink_status(kept))) << kept;
  }
  EXPECT_EQ(CheckOwnFillPath(v1::FaultRecord(), "0a1b2c3d4e5f").code(), absl::StatusCode::kInternal);
  // The genuine record is reverted.
  v1::FaultRecord ok;
  ok.set_id("f2");
  ok.mutable_disk_fill()->set_file(other_record);
  ok.mutable_disk_fill()->set_mount(dir_.path() + "/");
  EXPECT_FALSE(CheckOwnFillPath(ok, ctx_.agent_id).ok()) << "mount must be as Plan wrote it";
  ok.mutable_disk_fill()->set_mount(dir_.path());
  ASSERT_TRUE(h->Revert(ok, ctx_).ok());
  EXPECT_FALSE(Exists(other_record));
}

TEST_F(DiskFillHandlerTest, TmpfsIsRefusedUnlessThePolicyOptsIn) {
  v1::Policy no_opt_in;
  ctx_.policy = &no_opt_in;
  for (const char* type : {"tmpfs", "ramfs"}) {
    mounts_ = {Mount("/"), Mount(dir_.path(), type)};
    absl::Status s = Handler()->Plan(PercentSpec(50, dir_.path() + "/app"), ctx_, &record_).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << type;
    EXPECT_EQ(s.message(), fmt::format("path: {}/app is on a {} filesystem ({}), which keeps its "
                                       "data in memory; this agent's policy does not allow filling "
                                       "it (set disk_fill_allow_tmpfs: true in the policy)",
                                       dir_.path(), type, dir_.path()));
  }
  // No policy at all is the default policy: refused too.
  ctx_.policy = nullptr;
  EXPECT_EQ(Handler()->Plan(PercentSpec(50, dir_.path()), ctx_, &record_).status().code(),
            absl::StatusCode::kPermissionDenied);
  ctx_.policy = &no_opt_in;
  no_opt_in.set_disk_fill_allow_tmpfs(true);
  EXPECT_TRUE(Handler()->Plan(PercentSpec(50, dir_.path()), ctx_, &record_).ok());
  EXPECT_FALSE(record_.disk_fill().file().empty());
}

// Regression (issue 9): a bind mount of / got a 95% fill past a 90% ceiling
// on /. Ceilings match the filesystem by device, not the mount's path.
TEST_F(DiskFillHandlerTest, CeilingsMatchByDeviceNotByPath) {
  const std::string bind = dir_.path() + "/app";
  mounts_ = {Mount("/", "ext4", false, 801), Mount(bind, "ext4", false, 801),
             Mount("/data", "xfs", false, 802)};
  auto* c = policy_.add_disk_fill_ceilings();
  c->set_mount("/");
  c->set_max_percent(90);
  absl::Status s = Handler()->Plan(PercentSpec(95, bind + "/data"), ctx_, &record_).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "percent: filling would take " + bind +
                             " to 95%, above the policy ceiling of 90% (disk_fill_ceilings: / "
                             "is the same filesystem)");
  EXPECT_TRUE(Handler()->Plan(PercentSpec(90, bind), ctx_, &record_).ok());
  // A ceiling named by a folder on the filesystem holds for all of it; the
  // lowest of several wins.
  c = policy_.add_disk_fill_ceilings();
  c->set_mount(bind + "/data");
  c->set_max_percent(70);
  s = Handler()->Plan(PercentSpec(80, "/"), ctx_, &record_).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(s.message()), HasSubstr("above the policy ceiling of 70%"));
  // Another device has no policy ceiling: the default one (95%) holds.
  EXPECT_TRUE(Handler()->Plan(PercentSpec(95, "/data"), ctx_, &record_).ok());
  s = Handler()->Plan(PercentSpec(96, "/data"), ctx_, &record_).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(s.message()), HasSubstr("above the default ceiling of 95%"));
  // A ceiling on a path this host does not have applies to nothing.
  c = policy_.add_disk_fill_ceilings();
  c->set_mount("/missing");
  c->set_max_percent(10);
  EXPECT_TRUE(Handler()->Plan(PercentSpec(95, "/data"), ctx_, &record_).ok());
  // A ceiling at 100 lets a fill go past the default.
  c = policy_.add_disk_fill_ceilings();
  c->set_mount("/data");
  c->set_max_percent(100);
  EXPECT_TRUE(Handler()->Plan(PercentSpec(100, "/data"), ctx_, &record_).ok());
}

// btrfs: a subvolume mounted at /home has an st_dev of its own but shares the
// superblock (and its space) of /: the ceiling on / holds there too.
TEST_F(DiskFillHandlerTest, CeilingsHoldAcrossBtrfsSubvolumes) {
  mounts_ = {Mount("/", "btrfs", false, 30), Mount("/home", "btrfs", false, 30)};
  auto* c = policy_.add_disk_fill_ceilings();
  c->set_mount("/");
  c->set_max_percent(90);
  absl::Status s =
      Handler(TenPercentUsed(), {{"/", 31}, {"/home", 32}})->Plan(PercentSpec(95, "/home"), ctx_, &record_).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(s.message()), HasSubstr("above the policy ceiling of 90%"));
}

TEST_F(DiskFillHandlerTest, SweepRemovesTaggedFilesAtWritableRealMountRootsOnly) {
  TempDir pseudo("pseudo");
  TempDir readonly("ro");
  mounts_ = {Mount(dir_.path(), "ext4"), Mount(pseudo.path(), "proc"),
             Mount(readonly.path(), "xfs", /*ro=*/true), Mount(dir_.path(), "ext4")};
  ctx_.agent_id = "0a1b2c3d4e5f";
  const std::string leftover = dir_.Touch(".faultline-fill-0a1b2c3d4e5f-old1");
  const std::string leftover2 = dir_.Touch(".faultline-fill-0a1b2c3d4e5f-old2");
  // Another agent's (another state folder) and an untagged one: not ours.
  const std::string others_fill = dir_.Touch(".faultline-fill-111111111111-f0123");
  const std::string untagged = dir_.Touch(".faultline-fill-old3");
  const std::string other = dir_.Touch("keep.txt");
  const std::string almost = dir_.Touch(".faultline-fillx");
  std::filesystem::create_directory(dir_.path() + "/.faultline-fill-dir");
  std::filesystem::create_directories(dir_.path() + "/app");
  const std::string nested = dir_.Touch("app/.faultline-fill-nested");
  const std::string in_pseudo = pseudo.Touch(".faultline-fill-p");
  const std::string in_ro = readonly.Touch(".faultline-fill-r");

  auto removed = Handler()->Sweep(ctx_);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_THAT(*removed, UnorderedElementsAre(leftover, leftover2));
  EXPECT_FALSE(Exists(leftover));
  EXPECT_FALSE(Exists(leftover2));
  for (const auto& kept : {other, almost, nested, in_pseudo, in_ro, others_fill, untagged,
                           dir_.path() + "/.faultline-fill-dir"}) {
    EXPECT_TRUE(Exists(kept)) << kept;
  }
  // Nothing left: a second sweep removes nothing.
  EXPECT_TRUE(Handler()->Sweep(ctx_)->empty());
}

TEST_F(DiskFillHandlerTest, FillFilesCarryTheAgentsIdAndOnlyItsOwnAreSwept) {
  mounts_ = {Mount(dir_.path(), "tmpfs")};
  ctx_.agent_id = "0a1b2c3d4e5f";
  FaultContext other_agent = ctx_;
  other_agent.agent_id = "ffffffffffff";
  auto h = Handler();
  v1::FaultSpec spec = PercentSpec(90, dir_.path() + "/app/data");
  *record_.mutable_spec() = spec;
  ASSERT_TRUE(h->Plan(spec, ctx_, &record_).ok());
  EXPECT_EQ(record_.disk_fill().file(), dir_.path() + "/.faultline-fill-0a1b2c3d4e5f-0123abcd");
  v1::FaultRecord theirs = record_;
  theirs.set_id("f00000000001");
  ASSERT_TRUE(h->Plan(spec, other_agent, &theirs).ok());
  EXPECT_EQ(theirs.disk_fill().file(), dir_.path() + "/.faultline-fill-ffffffffffff-f00000000001");
  const std::string mine = dir_.Touch(".faultline-fill-0a1b2c3d4e5f-0123abcd");
  const std::string live = dir_.Touch(".faultline-fill-ffffffffffff-f00000000001");

  auto removed = h->Sweep(ctx_);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_THAT(*removed, UnorderedElementsAre(mine));
  EXPECT_TRUE(Exists(live));
  // Without an identity a handler cannot tell its files from others': it sweeps nothing.
  EXPECT_TRUE(h->Sweep(FaultContext{})->empty());
  EXPECT_TRUE(Exists(live));
  EXPECT_TRUE(IsOwnFillFile(".faultline-fill-ffffffffffff-f1", "ffffffffffff"));
  EXPECT_FALSE(IsOwnFillFile(".faultline-fill-ffffffffffff-f1", "0a1b2c3d4e5f"));
  EXPECT_FALSE(IsOwnFillFile(".faultline-fill-ffffffffffff-", "ffffffffffff"));
  EXPECT_FALSE(IsOwnFillFile(".faultline-fill-ffffffffffff-f1", ""));
}

// The real system view, read-only use.
TEST(RealFilesystemTest, ResolvesDirectoriesAndReadsMounts) {
  TempDir dir("realfs");
  auto fs = MakeRealFilesystem();
  std::filesystem::create_directories(dir.path() + "/a/b");
  auto real = fs->RealDirectory(dir.path() + "/a/../a/b/");
  ASSERT_TRUE(real.ok()) << real.status();
  EXPECT_EQ(*real, dir.path() + "/a/b");
  auto missing = fs->RealDirectory(dir.path() + "/nope");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(missing.status().message(), "path: " + dir.path() + "/nope does not exist");
  const std::string file = dir.Touch("f");
  EXPECT_EQ(fs->RealDirectory(file).status().message(), "path: " + file + " is not a directory");

  auto mounts = fs->Mounts();
  ASSERT_TRUE(mounts.ok());
  auto m = FindMount(*mounts, *real);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->mount_point[0], '/');
  auto usage = fs->StatFs(*real);
  ASSERT_TRUE(usage.ok());
  EXPECT_GT(usage->blocks, 0u);
  EXPECT_GT(usage->frsize, 0u);
  EXPECT_LE(usage->bavail, usage->bfree);
}

}  // namespace
}  // namespace faultline::agent
