// common/files.h: bounded, non-blocking reads and durable writes that never
// follow a planted link.
#include "common/files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

namespace faultline {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("fltest-" + std::to_string(::getpid()) + "-files");
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

TEST_F(FilesTest, AFifoIsRefusedAtOnceNotWaitedOn) {
  ASSERT_EQ(::mkfifo(Path("fifo").c_str(), 0600), 0);
  const auto start = std::chrono::steady_clock::now();
  auto text = ReadFileToString(Path("fifo"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  EXPECT_EQ(text.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(text.status().message()), HasSubstr("fifo: not a regular file"));
}

TEST_F(FilesTest, DevicesAndFoldersAreRefusedAndSizeIsCapped) {
  EXPECT_EQ(ReadFileToString("/dev/zero").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReadFileToString(dir_.string()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  std::ofstream(Path("big")) << std::string(70 * 1024, 'x');
  auto big = ReadFileToString(Path("big"), 64 * 1024);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(big.status().message()), HasSubstr("larger than 64 KiB"));
  EXPECT_EQ(ReadFileToString(Path("big"))->size(), 70u * 1024);
  EXPECT_EQ(ReadFileToString(Path("missing")).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(FilesTest, ALinkToARegularFileIsRead) {
  std::ofstream(Path("real")) << "nameserver 10.0.0.53\n";
  fs::create_symlink(Path("real"), Path("link"));
  EXPECT_EQ(*ReadFileToString(Path("link")), "nameserver 10.0.0.53\n");
}

TEST_F(FilesTest, ALinkPlantedAtTheTemporaryFileIsNeverFollowed) {
  std::ofstream(Path("victim")) << "precious";
  fs::create_symlink(Path("victim"), Path("out.tmp"));
  ASSERT_TRUE(WriteFileDurably(Path("out"), "report").ok());
  EXPECT_EQ(*ReadFileToString(Path("out")), "report");
  EXPECT_EQ(*ReadFileToString(Path("victim")), "precious");
  EXPECT_FALSE(fs::exists(fs::symlink_status(Path("out.tmp"))));
}

// `faultline-controller --db /dev/zero` once ended in "sqlite: disk I/O
// error": what SQLite would open is looked at first (stat only, no open that
// a FIFO could hold up), naming the flag.
TEST_F(FilesTest, CheckRegularFileOrAbsentNamesTheFlagAndWhatIsThere) {
  EXPECT_TRUE(CheckRegularFileOrAbsent("--db", Path("new.db")).ok());
  std::ofstream(Path("old.db")) << "x";
  EXPECT_TRUE(CheckRegularFileOrAbsent("--db", Path("old.db")).ok());

  absl::Status st = CheckRegularFileOrAbsent("--db", "/dev/zero");
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("--db: /dev/zero is a character device"));
  EXPECT_THAT(CheckRegularFileOrAbsent("--db", dir_.string()).message(),
              HasSubstr("is a folder"));
  ASSERT_EQ(::mkfifo(Path("fifo").c_str(), 0600), 0);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THAT(CheckRegularFileOrAbsent("--db", Path("fifo")).message(),
              HasSubstr("--db: " + Path("fifo") + " is a FIFO"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

}  // namespace
}  // namespace faultline
