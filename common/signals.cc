// common/signals.cc
#include "common/signals.h"

#include <pthread.h>
#include <signal.h>

namespace llmbox::common {
namespace {

sigset_t StopSignals() {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  return stop;
}

}  // namespace

void BlockStopSignals() {
  const sigset_t stop = StopSignals();
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
}

int WaitForStopSignal() {
  const sigset_t stop = StopSignals();
  int signal_number = 0;
  sigwait(&stop, &signal_number);
  return signal_number;
}

}  // namespace llmbox::common
