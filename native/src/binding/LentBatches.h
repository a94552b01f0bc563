// Batch buffers that JavaScript lends the tracer once, at start: the reader
// thread copies each batch into a free one, and JavaScript gives it back
// (releaseBatch) when the batch is worked off. A batch made a new external
// Buffer before, and V8 paces its collections by external bytes: at
// saturation that was megabytes a second of garbage for its GC helper
// threads. A batch that finds no free buffer big enough still gets one of
// its own, and is counted.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>

#include "napi_setup.h"

namespace sonde {

class LentBatches {
 public:
  static constexpr int kNone = -1;

  // JS thread, before the reader starts. `buffers`: an array of Buffers.
  void lend(Napi::Array buffers) {
    count_ = buffers.Length();
    slots_ = std::make_unique<Slot[]>(count_);
    // Held in an array of the addon's own, not the caller's: the reader
    // writes into them whatever JavaScript later does to its array.
    Napi::Array held = Napi::Array::New(buffers.Env(), count_);
    for (uint32_t i = 0; i < count_; i++) {
      Napi::Value v = buffers.Get(i);
      if (!v.IsBuffer()) throw Napi::TypeError::New(buffers.Env(), "Expected every lent batch buffer to be a Buffer");
      auto b = v.As<Napi::Buffer<uint8_t>>();
      slots_[i].data = b.Data();
      slots_[i].capacity = b.Length();
      held.Set(i, b);
    }
    values_ = Napi::Persistent(held);
  }

  // Reader thread: a free buffer of at least `bytes`, now taken, or kNone.
  int take(size_t bytes) {
    for (uint32_t i = 0; i < count_; i++) {
      Slot& s = slots_[i];
      if (s.capacity < bytes || s.busy.load(std::memory_order_relaxed)) continue;
      if (!s.busy.exchange(true, std::memory_order_acquire)) return static_cast<int>(i);
    }
    return kNone;
  }

  // Whether a lent buffer, free or not, could hold `bytes`.
  bool fits(size_t bytes) const {
    for (uint32_t i = 0; i < count_; i++)
      if (slots_[i].capacity >= bytes) return true;
    return false;
  }

  uint8_t* data(int slot) const { return slots_[slot].data; }

  // Either thread: the buffer is free again (JavaScript is done reading it,
  // or its batch never reached JavaScript).
  void giveBack(int slot) {
    if (slot >= 0 && static_cast<uint32_t>(slot) < count_) slots_[slot].busy.store(false, std::memory_order_release);
  }

  // JS thread: the Buffer of `slot`.
  Napi::Value value(int slot) const { return values_.Value().Get(static_cast<uint32_t>(slot)); }

 private:
  struct Slot {
    uint8_t* data = nullptr;
    size_t capacity = 0;
    std::atomic<bool> busy{false};
  };
  std::unique_ptr<Slot[]> slots_;
  uint32_t count_ = 0;
  Napi::Reference<Napi::Array> values_;
};

}  // namespace sonde
