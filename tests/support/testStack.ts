// Every program run of the test suite is a test stack (config/testValues.ts): the suite's published keys,
// recipients and documentation addresses are accepted. Loaded by .mocharc.json before any test file.
import { TEST_STACK_ENV, TEST_STACK_PHRASE } from "../../config/testValues";

process.env[TEST_STACK_ENV] = TEST_STACK_PHRASE;
