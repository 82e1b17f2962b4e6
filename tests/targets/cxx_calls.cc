// cxx_calls: calls ns::K::f(int) three times (C++ names are mangled in the symbol table).
#include <cstdio>
namespace ns {
struct K {
	__attribute__((noinline)) int f(int x);
};
int K::f(int x) { return x + 1; }
}  // namespace ns
int main() {
	ns::K k;
	int s = 0;
	for (int i = 0; i < 3; i++) s += k.f(i);
	std::printf("%d\n", s);
	return 0;
}
