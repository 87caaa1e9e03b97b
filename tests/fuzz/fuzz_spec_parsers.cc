// libFuzzer target: the parsers of the units and addresses people type
// (common/units.h, spec/net.h, spec/signals.h, controller/targets.h). The first
// byte picks the parser, the rest is the text. Besides "never crash", parsed
// values must survive a round trip through their canonical spelling.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "common/units.h"
#include "controller/targets.h"
#include "spec/net.h"
#include "spec/signals.h"

namespace {

using namespace faultline;

// A broken invariant is a crash libFuzzer records with its input.
void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t which = data[0];
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (which % 9) {
    case 0: {
      auto d = ParseDuration("duration", text);
      if (d.ok()) {
        Check(d->count() >= 0);
        (void)FormatDuration(*d);
      }
      break;
    }
    case 1: {
      auto s = ParseSize("bytes", text);
      if (s.ok()) (void)FormatSize(*s);
      break;
    }
    case 2: {
      auto p = ParsePercent("percent", text);
      if (p.ok()) {
        Check(*p >= 0 && *p <= 100);
        (void)spec::PercentToProb(*p);
      }
      break;
    }
    case 3: {
      auto r = ParseRate("rate", text);
      if (r.ok()) Check(*r > 0);
      break;
    }
    case 4: {
      auto c = spec::ParseCidr("peers[0]", text);
      if (c.ok()) {
        auto again = spec::ParseCidr("peers[0]", c->ToString());
        Check(again.ok() && *again == *c);
        Check(c->Contains(*c) && c->Overlaps(*c));
      }
      break;
    }
    case 5: {
      auto d = spec::ParseDestination("to[0]", text);
      if (d.ok()) {
        auto again = spec::ParseDestination("to[0]", d->Canonical());
        Check(again.ok() && again->Canonical() == d->Canonical());
      }
      break;
    }
    case 6: {
      auto sel = controller::ParseLabelSelector(std::string_view(text));
      if (sel.ok()) {
        const std::map<std::string, std::string> labels = {{"zone", "a"}, {"role", "db"}};
        (void)controller::Matches(*sel, labels);
      }
      break;
    }
    case 7: {
      auto sig = spec::ParseSignal(text);
      if (sig.ok()) {
        auto again = spec::ParseSignal(spec::SignalName(*sig));
        Check(again.ok() && *again == *sig);
      }
      break;
    }
    case 8: {
      (void)spec::ParseAddress(text);
      break;
    }
  }
  return 0;
}
