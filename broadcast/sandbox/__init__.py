"""Local emulations of the platforms, for drills, training and the test suite."""
