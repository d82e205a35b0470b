"""Fleet benchmarks on the lab: this toolkit (mirror + pyinfra) against the per-host install.sh-style way."""
