#include "agent/faults/nft/nft_session.h"

#include <fmt/format.h>
#include <nftables/libnftables.h>

#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "agent/faults/netns.h"
#include "common/unique_fd.h"

namespace faultline::agent::nft {
namespace {

std::mutex& NftMutex() {
  static std::mutex mu;
  return mu;
}

// nft's error buffer holds "Error: ...", the command and a caret line; keep
// it whole but on one line for the status message.
std::string OneLine(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  for (char& c : text) {
    if (c == '\n') c = '|';
  }
  return text;
}

// libnftables exit()s the whole process when it cannot open its netlink
// socket (a kernel without nfnetlink), so find out first, in the calling
// thread's network namespace, and turn it into an error.
absl::Status CheckNetfilterNetlink() {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER));
  if (!fd) {
    return absl::FailedPreconditionError(fmt::format(
        "kernel lacks nfnetlink/nf_tables ({}): load the modules or use a kernel that has them",
        std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

void NftSession::CtxDeleter::operator()(nft_ctx* ctx) const { nft_ctx_free(ctx); }

absl::StatusOr<std::unique_ptr<NftSession>> NftSession::Create() {
  std::lock_guard<std::mutex> lock(NftMutex());
  std::unique_ptr<nft_ctx, CtxDeleter> ctx(nft_ctx_new(NFT_CTX_DEFAULT));
  if (!ctx) return absl::FailedPreconditionError("nftables: nft_ctx_new failed");
  if (nft_ctx_buffer_output(ctx.get()) != 0 || nft_ctx_buffer_error(ctx.get()) != 0) {
    return absl::FailedPreconditionError("nftables: cannot buffer libnftables output");
  }
  return std::unique_ptr<NftSession>(new NftSession(std::move(ctx)));
}

NftSession::~NftSession() {
  std::lock_guard<std::mutex> lock(NftMutex());
  ctx_.reset();
}

absl::StatusOr<std::string> NftSession::Run(const std::string& commands) {
  if (absl::Status st = CheckNetfilterNetlink(); !st.ok()) return st;
  std::lock_guard<std::mutex> lock(NftMutex());
  const int rc = nft_run_cmd_from_buffer(ctx_.get(), commands.c_str());
  // The buffers are reset by the next command, so copy them now.
  std::string output = nft_ctx_get_output_buffer(ctx_.get());
  std::string error = nft_ctx_get_error_buffer(ctx_.get());
  if (rc != 0) {
    if (error.empty()) error = "command failed";
    return absl::FailedPreconditionError(fmt::format("nftables: {}", OneLine(error)));
  }
  return output;
}

absl::StatusOr<std::string> RunNft(const std::string& netns_path, const std::string& commands) {
  std::string output;
  absl::Status status = RunInNetns(netns_path, [&]() -> absl::Status {
    auto session = NftSession::Create();
    if (!session.ok()) return session.status();
    auto out = (*session)->Run(commands);
    if (!out.ok()) return out.status();
    output = *std::move(out);
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return output;
}

}  // namespace faultline::agent::nft
