# calls.py N: runs the generator `numbers` N times and collects garbage once. CPython 3.11
# fires python:::function-entry for a generator's frame, not for a plain Python-to-Python
# call (gh-98894), so the generator is what a test can count.
import gc
import sys


def numbers(k):
    for i in range(k):
        yield i


n = int(sys.argv[1]) if len(sys.argv) > 1 else 5
total = sum(sum(numbers(3)) for _ in range(n))
gc.collect()
print("done" if total == 3 * n else "wrong")
