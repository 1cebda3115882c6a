"""The fleet as one immutable snapshot, built from the sources by a fixed set of queries."""
