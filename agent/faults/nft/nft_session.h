// A libnftables context with output and error buffering, so command output is
// returned and errors come back as text instead of going to stderr.
#ifndef FAULTLINE_AGENT_FAULTS_NFT_NFT_SESSION_H_
#define FAULTLINE_AGENT_FAULTS_NFT_NFT_SESSION_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

struct nft_ctx;

namespace faultline::agent::nft {

// One nft context, bound to the network namespace of the thread that created
// it (create it inside RunInNetns). Owned by its creator; not thread-safe.
// Every Run() holds a process-wide lock: libnftables keeps global state
// (e.g. its symbol tables) that concurrent contexts must not race on.
class NftSession {
 public:
  static absl::StatusOr<std::unique_ptr<NftSession>> Create();
  ~NftSession();
  NftSession(const NftSession&) = delete;
  NftSession& operator=(const NftSession&) = delete;

  // Runs `commands` (nft language, one batch) and returns their output.
  // FAILED_PRECONDITION with nft's error text when nft refuses.
  absl::StatusOr<std::string> Run(const std::string& commands);

 private:
  struct CtxDeleter {
    void operator()(nft_ctx* ctx) const;
  };
  explicit NftSession(std::unique_ptr<nft_ctx, CtxDeleter> ctx) : ctx_(std::move(ctx)) {}

  std::unique_ptr<nft_ctx, CtxDeleter> ctx_;
};

// Runs `commands` in a fresh session inside the network namespace at
// `netns_path` ("" = the caller's own).
absl::StatusOr<std::string> RunNft(const std::string& netns_path, const std::string& commands);

}  // namespace faultline::agent::nft

#endif  // FAULTLINE_AGENT_FAULTS_NFT_NFT_SESSION_H_
