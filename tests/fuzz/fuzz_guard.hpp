// What every harness accepts: the code under test returns normally, or throws recur::Error whose
// subject is one the contract names (the file being read). Any other exception (std::bad_alloc,
// std::length_error, recur::InternalError, a json or toml++ exception that escaped) and any
// broken property the harness checks is a finding: it is printed and the process traps, which
// libFuzzer records as a crash together with the input.
#pragma once

#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <initializer_list>
#include <string>
#include <string_view>
#include <typeinfo>

#include "recur/error.hpp"

namespace recur::fuzz {

[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "\nrecur fuzz finding: %s\n", what.c_str());
  std::fflush(stderr);
  __builtin_trap();
}

inline void check(bool ok, const char* property) {
  if (!ok) fail(std::string("property broken: ") + property);
}

inline std::string type_name(const std::type_info& type) {
  int status = 0;
  char* demangled = abi::__cxa_demangle(type.name(), nullptr, nullptr, &status);
  std::string name = status == 0 && demangled ? demangled : type.name();
  std::free(demangled);
  return name;
}

// RECUR_FUZZ_VERBOSE=1 prints each outcome: how to check what the seeds exercise.
inline bool verbose() {
  static const bool on = std::getenv("RECUR_FUZZ_VERBOSE") != nullptr;
  return on;
}

// Runs body(). Returns true when it returned normally, false when it threw a recur::Error with
// one of `subjects` (an empty list accepts any subject); anything else is a finding.
template <typename Body>
bool returns_or_throws_error(std::initializer_list<std::string_view> subjects, Body&& body) {
  try {
    body();
    if (verbose()) std::fprintf(stderr, "accepted\n");
    return true;
  } catch (const recur::Error& e) {
    if (verbose()) std::fprintf(stderr, "rejected: %s\n", e.what());
    if (subjects.size() == 0) return false;
    for (std::string_view s : subjects)
      if (e.subject() == s) return false;
    fail("recur::Error names '" + e.subject() + "', not the input: " + e.what());
  } catch (const std::exception& e) {
    fail("unexpected " + type_name(typeid(e)) + ": " + e.what());
  } catch (...) {
    fail("unexpected exception that is not a std::exception");
  }
}

// Runs body() on input already validated: any exception at all is a finding.
template <typename Body>
void must_return(Body&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    fail("unexpected " + type_name(typeid(e)) + " on valid input: " + e.what());
  } catch (...) {
    fail("unexpected exception that is not a std::exception");
  }
}

}  // namespace recur::fuzz
