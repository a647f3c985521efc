// `tailor import`: CSV and JSONL files of each kind, into one store kept open
// across inputs. The first byte picks the kind and the format.
#include <cstdlib>
#include <memory>
#include <string>

#include "fuzz_target.h"
#include "ingest/importer.h"
#include "store/store.h"

namespace {

tailor::Store& FuzzStore() {
  static const std::unique_ptr<tailor::Store> store = [] {
    tailor::Store::Options o;
    o.path = tailor::fuzz::ScratchDir() + "/store.db";
    o.start_writer = false;
    o.synchronous_full = false;
    std::string err;
    auto s = tailor::Store::Open(o, &err);
    if (s == nullptr) std::abort();
    return s;
  }();
  return *store;
}

}  // namespace

TAILOR_FUZZ_TARGET(import) {
  if (size == 0) return;
  using tailor::ingest::ImportFormat;
  using tailor::ingest::ImportKind;
  static const ImportKind kinds[] = {ImportKind::kCustomers, ImportKind::kItems,
                                     ImportKind::kOffers, ImportKind::kEvents};
  tailor::ingest::ImportOptions options;
  options.kind = kinds[data[0] & 3];
  options.format = (data[0] & 4) ? ImportFormat::kJsonl : ImportFormat::kCsv;
  options.path = tailor::fuzz::WriteScratch("input", data + 1, size - 1);
  tailor::ingest::ImportSummary summary;
  (void)tailor::ingest::Import(FuzzStore(), options, &summary);
}
