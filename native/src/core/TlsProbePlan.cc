#include "TlsProbePlan.h"

namespace sonde {

const char* tlsProgramName(TlsProgram program) {
  switch (program) {
    case TlsProgram::ReadPlain: return "read";
    case TlsProgram::ReadEx: return "read_ex";
    case TlsProgram::WritePlain: return "write";
    case TlsProgram::WriteEx: return "write_ex";
    case TlsProgram::Handshake: return "handshake";
    case TlsProgram::Free: return "free";
  }
  return "?";
}

namespace {

TlsProbePlacement placement(const ElfCode& elf, TlsProgram program, const std::string& symbol, UprobeSiteMoves moves,
                            bool with_return, bool required) {
  TlsProbePlacement p;
  p.program = program;
  p.symbol = symbol;
  p.with_return = with_return;
  p.required = required;
  p.found = elf.ok() && findUprobeSite(elf, symbol, moves, &p.site);
  return p;
}

void planPair(const ElfCode& elf, TlsProgram plain_program, const std::string& plain, TlsProgram ex_program,
              const std::string& ex, std::vector<TlsProbePlacement>* out) {
  UprobeSiteMoves through_wrapper;
  through_wrapper.through_wrapper = true;
  TlsProbePlacement ex_placement = placement(elf, ex_program, ex, through_wrapper, true, false);
  TlsProbePlacement plain_placement = placement(elf, plain_program, plain, {}, true, true);
  plain_placement.covered_by_previous =
      ex_placement.found && ex_placement.site.via_callee && functionCalls(elf, plain, ex_placement.site.callee_vaddr);
  out->push_back(std::move(ex_placement));
  out->push_back(std::move(plain_placement));
}

}  // namespace

std::vector<TlsProbePlacement> planTlsProbes(const ElfCode& elf) {
  std::vector<TlsProbePlacement> plan;
  planPair(elf, TlsProgram::ReadPlain, "SSL_read", TlsProgram::ReadEx, "SSL_read_ex", &plan);
  planPair(elf, TlsProgram::WritePlain, "SSL_write", TlsProgram::WriteEx, "SSL_write_ex", &plan);
  // The handshake shows a connection's socket before its first SSL_write.
  plan.push_back(placement(elf, TlsProgram::Handshake, "SSL_do_handshake", {}, true, false));
  // Its program forgets the SSL*'s socket: nothing to do for NULL.
  UprobeSiteMoves past_null_check;
  past_null_check.past_null_check = true;
  plan.push_back(placement(elf, TlsProgram::Free, "SSL_free", past_null_check, false, false));
  return plan;
}

}  // namespace sonde
