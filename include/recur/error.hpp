// recur::Error: the one exception type the library throws for anything a user can cause.
// It names what it concerns (a file, a flag, a tensor) and why. The command line turns it into
// one line on stderr and exit code 2.
#pragma once

#include <stdexcept>
#include <string>

namespace recur {

class Error : public std::runtime_error {
 public:
  Error(std::string subject, std::string reason)
      : std::runtime_error(subject.empty() ? reason : subject + ": " + reason),
        subject_(std::move(subject)),
        reason_(std::move(reason)) {}

  const std::string& subject() const { return subject_; }
  const std::string& reason() const { return reason_; }

 private:
  std::string subject_;
  std::string reason_;
};

// An internal invariant broke: a bug in recur, not bad input. The CLI exits with code 1.
class InternalError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

}  // namespace recur

// RECUR_CHECK(cond, subject, reason): throw recur::Error when cond is false.
#define RECUR_CHECK(cond, subject, reason)                  \
  do {                                                      \
    if (!(cond)) throw ::recur::Error((subject), (reason)); \
  } while (0)

// RECUR_ASSERT(cond): an invariant of recur's own code.
#define RECUR_ASSERT(cond)                                                                  \
  do {                                                                                      \
    if (!(cond))                                                                            \
      throw ::recur::InternalError(std::string(__FILE__) + ":" + std::to_string(__LINE__) + \
                                   ": invariant failed: " #cond);                           \
  } while (0)
