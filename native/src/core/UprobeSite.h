// Where a uprobe on a function costs least. The x86-64 kernel emulates a
// few instructions at a probe (push of a register, nop, call, jmp); any
// other instruction is copied out and single-stepped, which takes a second
// trap. Measured on this VM kind: about 1 µs a hit on an emulated
// instruction, 11–15 µs on any other (docs/design-notes.md, "Where a uprobe
// sits"). Distribution builds of libssl omit the frame pointer, so SSL_read
// and SSL_write begin with `sub $n,%rsp`, and CET builds begin every
// function with `endbr64`: both single-step on every call.
//
// A site is only ever moved where the function's arguments and its return
// address are still exactly as at entry, so the same BPF programs read them
// there, and a return probe there sees the function's return.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

typedef struct Elf Elf;

namespace sonde {

// The code of one ELF file: function symbols and their bytes.
class ElfCode {
 public:
  explicit ElfCode(const std::string& path);
  ~ElfCode();
  ElfCode(const ElfCode&) = delete;
  ElfCode& operator=(const ElfCode&) = delete;

  // False when the file could not be read as an x86-64 ELF; error() says why.
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  struct Function {
    uint64_t vaddr = 0;
    uint64_t size = 0;
  };
  // A defined function symbol of .dynsym or .symtab.
  bool find(const std::string& name, Function* out) const;
  // The file offset of a virtual address inside a loaded segment.
  bool fileOffset(uint64_t vaddr, uint64_t* out) const;
  // Up to `n` bytes of code at `vaddr`; how many were read.
  size_t read(uint64_t vaddr, uint8_t* out, size_t n) const;

 private:
  struct Segment {
    uint64_t vaddr, offset, filesz;
  };
  int fd_ = -1;
  Elf* elf_ = nullptr;
  std::string error_;
  std::vector<Segment> segments_;
};

struct UprobeSite {
  // The function's entry, when its symbol was found.
  uint64_t entry_vaddr = 0;
  // Where to attach (a file offset, as the kernel takes it).
  uint64_t file_offset = 0;
  // The site is the entry of the function `symbol` calls first, with its
  // own arguments (a thin wrapper: `sub $n,%rsp; call f`).
  bool via_callee = false;
  uint64_t callee_vaddr = 0;
  // The site is past the function's `test %rdi,%rdi; je`.
  bool past_null_check = false;
  // The kernel emulates the instruction at the site (no single step).
  bool emulated = false;
};

// Where a site may move from the entry when the entry would single-step
// (past an `endbr64` it always may).
struct UprobeSiteMoves {
  // For an entry and a return probe: to the entry of the function a thin
  // wrapper calls with its own arguments.
  bool through_wrapper = false;
  // For an entry probe alone whose program reads only the first argument
  // and has nothing to do when it is NULL (SSL_free): past a leading
  // `test %rdi,%rdi; je`, so that only the calls with NULL go unseen.
  bool past_null_check = false;
};

// The cheapest site for `symbol` that `moves` allow; false when the
// symbol is not in the file.
bool findUprobeSite(const ElfCode& elf, const std::string& symbol, UprobeSiteMoves moves, UprobeSite* out);

// Whether the code of `symbol` calls or jumps to `target` (a direct
// rel32 call or jmp anywhere in its body).
bool functionCalls(const ElfCode& elf, const std::string& symbol, uint64_t target);

// Whether the x86-64 kernel emulates the instruction at `code` (at least
// 2 readable bytes) instead of single-stepping it.
bool kernelEmulates(const uint8_t* code);

}  // namespace sonde
