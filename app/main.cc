#include <cstdio>
int main() {
  std::puts("delete-sync: under construction");
  return 0;
}
