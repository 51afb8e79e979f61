pub fn lint() {}
