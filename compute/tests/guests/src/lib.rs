//! Shared by the test guests: nothing yet.
