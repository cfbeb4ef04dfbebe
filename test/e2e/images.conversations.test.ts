import { imageScenarios } from './scenarios/images.ts';

imageScenarios('conversations');
