"""Using a trained model from its checkpoint alone: loading (`aclnet.load`), reading inputs, predicting,
embedding, timelines, and export."""
