"""Group `meta`: what is read from the Marketing API, stored as returned, and its checks."""
