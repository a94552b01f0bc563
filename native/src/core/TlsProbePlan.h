// Where sonde's OpenSSL programs go in one file (libssl, or a binary that
// links it statically). The tracer attaches by this plan, and the benchmark
// puts empty programs at the same sites to measure what the probes cost
// before any program does work, so the two cannot drift apart.
#pragma once

#include <string>
#include <vector>

#include "UprobeSite.h"

namespace sonde {

// Which of sonde's TLS programs a placement runs at its site.
enum class TlsProgram { ReadPlain, ReadEx, WritePlain, WriteEx, Handshake, Free };

const char* tlsProgramName(TlsProgram program);

struct TlsProbePlacement {
  TlsProgram program;
  std::string symbol;
  // The call's return program too, at the same site (one trap serves both).
  bool with_return = false;
  // The file is not traced without it.
  bool required = false;
  // `site` holds where it goes; else libbpf finds `symbol`'s entry by name
  // (no readable x86-64 ELF, or no such symbol: the attach then fails).
  bool found = false;
  UprobeSite site;
  // The previous placement, once attached, sees this one's calls too (both
  // forms call one internal function, probed there): this one is skipped.
  bool covered_by_previous = false;
};

// In attach order: the read pair, the write pair, SSL_do_handshake, SSL_free.
//
// SSL_read and SSL_read_ex (or the write pair): OpenSSL 3's SSL_read_ex is
// `sub $8,%rsp; call ssl_read_internal`, and SSL_read calls the same
// function: probed there, one cheap site sees both, each call once. Else
// each is probed at its own entry (neither calls the other). Only the plain
// form is required: the _ex forms are OpenSSL 1.1.1+.
std::vector<TlsProbePlacement> planTlsProbes(const ElfCode& elf);

}  // namespace sonde
