"""GDPR erasure: who holds a person's data, and removing it from every store, provably."""
