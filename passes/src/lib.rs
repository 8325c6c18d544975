//! Graph analyses and optimisations.
