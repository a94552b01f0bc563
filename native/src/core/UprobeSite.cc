#include "UprobeSite.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sonde {
namespace {

constexpr size_t kEndbr64Bytes = 4;

size_t endbr64At(const uint8_t* code) {
  return code[0] == 0xf3 && code[1] == 0x0f && code[2] == 0x1e && code[3] == 0xfa ? kEndbr64Bytes : 0;
}

int32_t rel32At(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

ElfCode::ElfCode(const std::string& path) {
  if (elf_version(EV_CURRENT) == EV_NONE) {
    error_ = "libelf is too old";
    return;
  }
  fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    error_ = std::string("open ") + path + ": " + strerror(errno);
    return;
  }
  elf_ = elf_begin(fd_, ELF_C_READ, nullptr);
  if (!elf_) {
    error_ = std::string("read ELF of ") + path + ": " + elf_errmsg(-1);
    return;
  }
  GElf_Ehdr ehdr;
  size_t phnum = 0;
  if (!gelf_getehdr(elf_, &ehdr) || ehdr.e_machine != EM_X86_64 || elf_getphdrnum(elf_, &phnum) != 0) {
    error_ = path + " is not an x86-64 ELF file";
    return;
  }
  for (size_t i = 0; i < phnum; i++) {
    GElf_Phdr ph;
    if (gelf_getphdr(elf_, int(i), &ph) && ph.p_type == PT_LOAD && (ph.p_flags & PF_X))
      segments_.push_back({ph.p_vaddr, ph.p_offset, ph.p_filesz});
  }
}

ElfCode::~ElfCode() {
  if (elf_) elf_end(elf_);
  if (fd_ >= 0) close(fd_);
}

// A linear scan of .dynsym, then .symtab: a handful of lookups per attach,
// against tables the node binary fills with about 100k names.
bool ElfCode::find(const std::string& name, Function* out) const {
  if (!ok()) return false;
  for (Elf64_Word wanted : {Elf64_Word(SHT_DYNSYM), Elf64_Word(SHT_SYMTAB)}) {
    for (Elf_Scn* scn = elf_nextscn(elf_, nullptr); scn; scn = elf_nextscn(elf_, scn)) {
      GElf_Shdr sh;
      if (!gelf_getshdr(scn, &sh) || sh.sh_type != wanted || sh.sh_entsize == 0) continue;
      Elf_Data* data = elf_getdata(scn, nullptr);
      if (!data) continue;
      size_t count = sh.sh_size / sh.sh_entsize;
      for (size_t j = 0; j < count; j++) {
        GElf_Sym sym;
        if (!gelf_getsym(data, int(j), &sym) || GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_shndx == SHN_UNDEF ||
            sym.st_value == 0)
          continue;
        const char* n = elf_strptr(elf_, sh.sh_link, sym.st_name);
        if (n && name == n) {
          *out = {sym.st_value, sym.st_size};
          return true;
        }
      }
    }
  }
  return false;
}

bool ElfCode::fileOffset(uint64_t vaddr, uint64_t* out) const {
  for (const Segment& s : segments_) {
    if (vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz) {
      *out = vaddr - s.vaddr + s.offset;
      return true;
    }
  }
  return false;
}

size_t ElfCode::read(uint64_t vaddr, uint8_t* out, size_t n) const {
  uint64_t offset;
  if (fd_ < 0 || !fileOffset(vaddr, &offset)) return 0;
  ssize_t got = pread(fd_, out, n, off_t(offset));
  return got > 0 ? size_t(got) : 0;
}

bool kernelEmulates(const uint8_t* code) {
  if (code[0] >= 0x50 && code[0] <= 0x57) return true;                    // push %rax..%rdi
  if (code[0] == 0x41 && code[1] >= 0x50 && code[1] <= 0x57) return true;  // push %r8..%r15
  if (code[0] == 0x90 || (code[0] == 0x0f && code[1] == 0x1f)) return true; // nop, nopl
  return code[0] == 0xe8 || code[0] == 0xe9 || code[0] == 0xeb;           // call, jmp
}

bool findUprobeSite(const ElfCode& elf, const std::string& symbol, UprobeSiteMoves moves, UprobeSite* out) {
  ElfCode::Function f;
  if (!elf.find(symbol, &f)) return false;
  UprobeSite site;
  site.entry_vaddr = f.vaddr;
  uint8_t code[16] = {};
  size_t got = elf.read(f.vaddr, code, sizeof code);
  uint64_t at = f.vaddr;
  if (got == sizeof code) {
    // endbr64 changes no register: past it, the arguments and the return
    // address are as at entry.
    size_t skip = endbr64At(code);
    const uint8_t* p = code + skip;
    if (kernelEmulates(p)) {
      at = f.vaddr + skip;
      site.emulated = true;
    } else if (moves.through_wrapper && p[0] == 0x48 && p[1] == 0x83 && p[2] == 0xec && p[4] == 0xe8) {
      // `sub $n,%rsp; call f`: f receives this function's arguments
      // untouched, and a return probe at f's entry sees f return to it.
      uint64_t callee = f.vaddr + skip + 4 + 5 + int64_t(rel32At(p + 5));
      uint8_t callee_code[8] = {};
      if (elf.read(callee, callee_code, sizeof callee_code) == sizeof callee_code) {
        size_t callee_skip = endbr64At(callee_code);
        if (kernelEmulates(callee_code + callee_skip)) {
          at = callee + callee_skip;
          site.via_callee = true;
          site.callee_vaddr = callee;
          site.emulated = true;
        }
      }
    } else if (moves.past_null_check && p[0] == 0x48 && p[1] == 0x85 && p[2] == 0xff) {
      // test %rdi,%rdi, then je rel8 (74) or je rel32 (0f 84): whatever
      // the branch does, every call with a non-NULL first argument reaches
      // the next instruction with its arguments untouched.
      size_t je = p[3] == 0x74 ? 2 : p[3] == 0x0f && p[4] == 0x84 ? 6 : 0;
      if (je && kernelEmulates(p + 3 + je)) {
        at = f.vaddr + skip + 3 + je;
        site.past_null_check = true;
        site.emulated = true;
      }
    }
  }
  if (!elf.fileOffset(at, &site.file_offset)) return false;
  *out = site;
  return true;
}

bool functionCalls(const ElfCode& elf, const std::string& symbol, uint64_t target) {
  ElfCode::Function f;
  if (!elf.find(symbol, &f) || f.size < 5 || f.size > (64u << 10)) return false;
  std::vector<uint8_t> code(f.size);
  if (elf.read(f.vaddr, code.data(), code.size()) != code.size()) return false;
  // Bytes are not decoded: a rel32 that lands exactly on `target` from an
  // e8/e9 byte that is not an instruction's first is not a risk worth
  // decoding for.
  for (size_t i = 0; i + 5 <= code.size(); i++) {
    if ((code[i] == 0xe8 || code[i] == 0xe9) && f.vaddr + i + 5 + int64_t(rel32At(&code[i + 1])) == target) return true;
  }
  return false;
}

}  // namespace sonde
