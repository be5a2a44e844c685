"""minigpt.threads: the thread count every command-line tool starts with."""
from minigpt.threads import choose_threads, physical_cores

# two sockets' worth of /proc/cpuinfo: 4 logical CPUs, 2 cores with 2 hyperthreads each
HYPERTHREADED = "\n\n".join(
    f"processor\t: {p}\nphysical id\t: 0\ncore id\t\t: {core}\nsiblings\t: 4"
    for p, core in [(0, 0), (1, 1), (2, 0), (3, 1)])


def test_hyperthreads_count_once():
    assert physical_cores(HYPERTHREADED, allowed={0, 1, 2, 3}) == 2


def test_only_cpus_this_process_may_use_count():
    assert physical_cores(HYPERTHREADED, allowed={0, 2}) == 1  # both threads of core 0


def test_cpuinfo_without_core_ids_falls_back_to_logical_cpus():
    assert physical_cores("processor\t: 0\n\nprocessor\t: 1\n\nprocessor\t: 2", allowed={0, 1, 2}) == 3


def test_omp_num_threads_wins():
    assert choose_threads({"OMP_NUM_THREADS": "1"}, HYPERTHREADED, {0, 1, 2, 3}) == (1, "set by OMP_NUM_THREADS")


def test_bad_omp_num_threads_is_ignored_with_a_reason():
    threads, why = choose_threads({"OMP_NUM_THREADS": "two"}, HYPERTHREADED, {0, 1, 2, 3})
    assert threads == 2 and "two" in why
    assert choose_threads({}, HYPERTHREADED, {0, 1, 2, 3})[0] == 2
