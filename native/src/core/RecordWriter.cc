#include "RecordWriter.h"

#include <cstddef>
#include <cstring>

namespace sonde {

size_t batchEnd(const uint8_t* records, size_t total, size_t at, size_t max_bytes, size_t* count) {
  size_t end = at;
  *count = 0;
  while (end < total) {
    uint32_t bytes = 0;
    if (total - end >= sizeof(ExchangeRecord))
      std::memcpy(&bytes, records + end + offsetof(ExchangeRecord, record_bytes), sizeof bytes);
    if (bytes < sizeof(ExchangeRecord) || bytes > total - end) {
      ++*count;
      return total;
    }
    if (*count > 0 && end + bytes - at > max_bytes) break;
    end += bytes;
    ++*count;
  }
  return end;
}

void RecordWriter::write(const Connection& c, const Exchange& x, Protocol protocol) {
  ExchangeRecord rec{};
  rec.record_bytes = sizeof(rec) + x.request.payload.size() + x.response.payload.size();
  rec.role = c.role;
  rec.flags = x.flags;
  rec.link_source = uint8_t(x.context.link_source);
  rec.trace_flags = x.context.trace_flags;
  rec.pid = c.key.pid;
  rec.tid = x.request.tid;
  rec.fd = c.key.fd;
  rec.generation = c.generation;
  rec.family = c.family;
  rec.local_port = c.tuple.local_port;
  rec.remote_port = c.tuple.remote_port;
  rec.protocol = uint8_t(protocol);
  rec.source = c.source;
  std::memcpy(rec.local_addr, c.tuple.local_addr.data(), 16);
  std::memcpy(rec.remote_addr, c.tuple.remote_addr.data(), 16);
  rec.request_start_ns = x.request.start_ns;
  rec.request_end_ns = x.request.last_ns;
  if (x.has_response) {
    rec.response_start_ns = x.response.start_ns;
    rec.response_end_ns = x.response.last_ns;
    rec.response_bytes = x.response.bytes;
  }
  rec.request_bytes = x.request.bytes;
  std::memcpy(rec.trace_id, x.context.trace_id, 16);
  std::memcpy(rec.span_id, x.context.span_id, 8);
  std::memcpy(rec.parent_span_id, x.context.parent_span_id, 8);
  std::memcpy(rec.comm, c.comm, sizeof(rec.comm));
  rec.request_payload_bytes = x.request.payload.size();
  rec.response_payload_bytes = x.response.payload.size();
  rec.stream_id = x.stream_id;
  rec.end_error_code = x.end_error_code;

  size_t at = output_.size();
  output_.resize(at + rec.record_bytes);
  std::memcpy(output_.data() + at, &rec, sizeof(rec));
  std::memcpy(output_.data() + at + sizeof(rec), x.request.payload.data(), x.request.payload.size());
  std::memcpy(output_.data() + at + sizeof(rec) + x.request.payload.size(), x.response.payload.data(),
              x.response.payload.size());
  counters_.exchanges_emitted.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace sonde
