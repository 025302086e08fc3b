export default ["packages/*", "bench"]
