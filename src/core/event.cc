#include "core/event.h"

namespace ds {

const char* ActionName(EventAction a) {
  switch (a) {
    case EventAction::kCreate:
      return "create";
    case EventAction::kRemove:
      return "remove";
    case EventAction::kIgnore:
      return "ignore";
  }
  return "unknown";
}

}  // namespace ds
