"""The matcher's use cases: one module per flow, one function per command or event.

Each takes an open transaction (the consumer guard's for an event, its own for a sweep or
an admin command), locks the posting it is about, asks the domain what to do, and writes
the state, the Kafka events and the partner notifications — all in that one transaction.

Each one that touches a posting's bookings starts with `store.lock_posting` (advisory lock
+ `SELECT … FOR UPDATE`; `lock_postings` for a batch of postings, in id order), so
decisions about one posting never race, whatever topic or timer caused them; the database
constraints hold the invariants besides.
"""
