// Serializes finished exchanges into ExchangeRecords, back to back in one
// buffer that crosses into JavaScript as one batch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "ConnectionTable.h"
#include "Exchange.h"
#include "TrackerShared.h"

namespace sonde {

// Where the batch that starts at `at` ends: after as many whole records as
// fit `max_bytes` (at least one). `*count` gets their number. Bytes that are
// not a record the writer made end the batch with them, counted as one, for
// the decoder to report.
size_t batchEnd(const uint8_t* records, size_t total, size_t at, size_t max_bytes, size_t* count);

class RecordWriter {
 public:
  explicit RecordWriter(TrackerCounters& counters) : counters_(counters) {}

  void write(const Connection& c, const Exchange& x, Protocol protocol);

  bool empty() const { return output_.empty(); }
  size_t bytes() const { return output_.size(); }
  const uint8_t* data() const { return output_.data(); }
  void take(std::vector<uint8_t>* out) {
    out->swap(output_);
    output_.clear();
  }
  // Forgets the first `n` bytes, once they are handed over.
  void dropFront(size_t n) { output_.erase(output_.begin(), output_.begin() + std::ptrdiff_t(n)); }

 private:
  TrackerCounters& counters_;
  std::vector<uint8_t> output_;
};

}  // namespace sonde
