// Placeholder until the demo pipeline lands in this issue.
int main() { return 0; }
