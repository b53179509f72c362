"""What every stage runs on: the process group (`distributed`), the log, leases between ranks and
nodes, the progress file and the status reporter, checkpoint folders, the preflight checks,
the version check, and where llama.cpp's tools are."""
