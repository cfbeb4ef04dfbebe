import { alternativesScenarios } from './scenarios/alternatives.ts';

alternativesScenarios('responses');
