// Prints vitest's JSON result as one plain closing line ("N passed, N failed, N skipped") that CI can read.
import { readFileSync } from 'node:fs';

const result = JSON.parse(readFileSync(process.argv[2] ?? '.vitest-result.json', 'utf8'));
const skipped = result.numPendingTests + result.numTodoTests;
console.log(`tests: ${result.numPassedTests} passed, ${result.numFailedTests} failed, ${skipped} skipped`);
process.exit(result.numFailedTests > 0 || !result.success ? 1 : 0);
