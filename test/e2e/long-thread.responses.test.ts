import { longThreadScenario } from './scenarios/long-thread.ts';

longThreadScenario('responses');
