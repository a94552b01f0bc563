#include "ConnectionTable.h"

namespace sonde {

ConnectionTable::ConnectionTable(const TrackerOptions& options, TrackerCounters& counters, DepartureHandler on_departure)
    : options_(options), counters_(counters), on_departure_(std::move(on_departure)) {}

Connection* ConnectionTable::findOrOpen(const sonde_event_header& hdr, const sonde_tuple& tuple) {
  ConnKey key{hdr.pid, hdr.fd};
  auto it = conns_.find(key);
  if (it != conns_.end()) {
    if (it->second->generation == hdr.generation) return it->second.get();
    on_departure_(*it->second, Departure::FdReused);
    erase(it->second.get());
  }
  if (conns_.size() >= options_.max_connections && !lru_.empty()) {
    Connection* victim = conns_.find(lru_.front())->second.get();
    counters_.connections_evicted.fetch_add(1, std::memory_order_relaxed);
    on_departure_(*victim, Departure::Evicted);
    erase(victim);
  }
  auto conn = std::make_unique<Connection>();
  Connection* c = conn.get();
  c->key = key;
  c->generation = hdr.generation;
  c->family = tuple.family;
  c->tuple = ConnTuple::from(tuple);
  switch (hdr.role_hint) {
    case SONDE_ROLE_SERVER: c->role = uint8_t(ExchangeRole::Server); break;
    case SONDE_ROLE_CLIENT: c->role = uint8_t(ExchangeRole::Client); break;
    default: c->preexisting = true;
  }
  if (self_tuples_.count(c->tuple.mirrored())) {
    c->ignored = true;
    counters_.self_connections_ignored.fetch_add(1, std::memory_order_relaxed);
  }
  lru_.push_back(key);
  c->lru_pos = std::prev(lru_.end());
  by_tuple_[c->tuple] = key;
  conns_.emplace(key, std::move(conn));
  counters_.connections_opened.fetch_add(1, std::memory_order_relaxed);
  counters_.connections_tracked.store(conns_.size(), std::memory_order_relaxed);
  return c;
}

Connection* ConnectionTable::find(uint32_t pid, int32_t fd, uint32_t generation) {
  auto it = conns_.find(ConnKey{pid, fd});
  if (it == conns_.end() || it->second->generation != generation) return nullptr;
  return it->second.get();
}

void ConnectionTable::touch(Connection* c, uint64_t now_ns) {
  c->last_event_ns = now_ns;
  lru_.splice(lru_.end(), lru_, c->lru_pos);
}

void ConnectionTable::erase(Connection* c) {
  auto t = by_tuple_.find(c->tuple);
  if (t != by_tuple_.end() && t->second == c->key) by_tuple_.erase(t);
  lru_.erase(c->lru_pos);
  conns_.erase(c->key);
  counters_.connections_tracked.store(conns_.size(), std::memory_order_relaxed);
}

void ConnectionTable::addSelfTuple(const sonde_tuple& tuple) {
  if (self_tuples_.size() >= options_.max_self_tuples) {
    // Oldest first would need another list; these are few (one per export
    // connection) and short-lived, so starting over is good enough.
    self_tuples_.clear();
  }
  self_tuples_.insert(ConnTuple::from(tuple));
}

std::vector<Connection*> ConnectionTable::all() const {
  std::vector<Connection*> out;
  out.reserve(conns_.size());
  for (auto& [key, conn] : conns_) out.push_back(conn.get());
  return out;
}

std::vector<Connection*> ConnectionTable::ofProcess(uint32_t pid) const {
  std::vector<Connection*> out;
  for (auto& [key, conn] : conns_)
    if (key.pid == pid) out.push_back(conn.get());
  return out;
}

}  // namespace sonde
