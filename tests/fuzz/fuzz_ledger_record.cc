// libFuzzer target: the ledger record reader (agent/ledger.h). The bytes are a
// file found in STATE_DIR/ledger/ at start-up: a crafted or torn record must be
// refused (kept as .corrupt) or parsed into a record whose spec the agent's
// rules (spec/) then check, never crash the agent's recovery.
#include <cstddef>
#include <cstdint>
#include <string>

#include <google/protobuf/stubs/logging.h>

#include "agent/ledger.h"
#include "spec/fault_spec.h"

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  // protobuf logs every invalid UTF-8 string it meets; that is noise here.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  auto record = faultline::agent::ParseLedgerRecord(bytes, "f0123456789ab");
  if (!record.ok()) return 0;
  // Recovery looks the kind up, then the handler checks the record's spec.
  (void)faultline::spec::KindOf(record->spec());
  (void)faultline::spec::KindName(record->spec());
  auto checked = faultline::spec::Validate(record->spec());
  if (checked.ok()) (void)faultline::spec::Describe(record->spec());
  return 0;
}
