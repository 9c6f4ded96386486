//! (module under construction in its own branch)
